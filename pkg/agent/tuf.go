// Getting the catalog: the agent is a TUF client (pkg/tufclient) whose
// metadata comes from the group's relays. The trusted metadata lives in
// Dir/.relayd-agent/tuf, so a restarted agent keeps its rollback floor.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// tufDir is the directory, inside StateDir, of the trusted metadata.
const tufDir = "tuf"

// errBehind: a relay serves an older generation than the one announced.
var errBehind = errors.New("agent: relay behind the announced generation")

// newTUF is the agent's TUF client: cfg.Root as the initial trusted root,
// the metadata trusted so far persisted under the state directory (kept in
// memory only with Discard), expiry judged on the agent's clock. It
// creates Dir and the state directory.
func (a *Agent) newTUF() (*tufclient.Client, error) {
	opt := tufclient.Options{Now: a.clock.Now, MaxBytes: a.cfg.MaxCatalogBytes, Log: a.log, Memo: a.cfg.TUFMemo}
	if !a.cfg.Discard {
		// Made here first: the client would make every missing parent
		// 0700.
		opt.Dir = filepath.Join(a.stateDir(), tufDir)
	}
	c, err := tufclient.New(a.cfg.Root, opt)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted root (--root): %w", ErrConfig, err)
	}
	return c, nil
}

// Catalog returns the newest catalog the relays serve, verified as a TUF
// client: root chain, timestamp, snapshot, targets and delegations, none
// expired and none older than what the agent trusts already. A relay that
// serves older or expired metadata is skipped for the next; when every
// relay does, the error wraps tufclient.ErrRollback or
// tufclient.ErrExpired ("metadata expired since …").
func (a *Agent) Catalog(ctx context.Context) (*catalog.Catalog, error) {
	c, err := a.catalog(ctx, 0)
	if err := a.saveState(err); err != nil {
		return nil, err
	}
	return c, nil
}

// catalog is Catalog preferring a relay that has generation want (one
// that was announced): relays behind it are skipped while another may
// have it; after a whole round the newest found is returned. The state
// records its generation but is not saved: the caller saves it once.
func (a *Agent) catalog(ctx context.Context, want uint64) (*catalog.Catalog, error) {
	var best *catalog.Catalog
	err := a.retryUntil(ctx, "catalog", func(base *url.URL) error {
		st, err := a.tuf.Update(ctx, &relayFetcher{a: a, base: base})
		if err != nil {
			return a.updateError(err)
		}
		c := st.Catalog
		if best == nil || c.Generation > best.Generation {
			best = c
		}
		if want > 0 && c.Generation < want {
			return fmt.Errorf("%w: it serves generation %d, %d was announced", errBehind, c.Generation, want)
		}
		return nil
	}, func() bool { return best != nil })
	if best == nil {
		return nil, err
	}
	a.state.seen(best.Generation)
	return best, nil
}

// updateError words a failed TUF update. Expired metadata is said with
// the time it expired, which tufclient puts in the error.
func (a *Agent) updateError(err error) error {
	if errors.Is(err, tufclient.ErrExpired) {
		return fmt.Errorf("agent: refusing to install anything: %w", err)
	}
	return fmt.Errorf("agent: metadata: %w", err)
}

// relayFetcher is the tufclient.Fetcher of one update: the timestamp and
// the root chain come from base (the relay being tried, so a relay that
// is behind or frozen fails as a whole and the agent moves on); the
// versioned files, which the trusted snapshot and timestamp pin, come
// from base first and from the other relays when base fails.
type relayFetcher struct {
	a    *Agent
	base *url.URL
}

var _ tufclient.Fetcher = (*relayFetcher)(nil)

// FetchMeta reads one metadata file of at most max bytes (and at most
// MaxCatalogBytes).
func (f *relayFetcher) FetchMeta(ctx context.Context, name string, max int64) ([]byte, error) {
	if max <= 0 || max > f.a.cfg.MaxCatalogBytes {
		max = f.a.cfg.MaxCatalogBytes
	}
	b, err := f.a.readMeta(ctx, f.base, name, max)
	if err == nil || name == "timestamp.json" || strings.HasSuffix(name, ".root.json") || ctx.Err() != nil {
		return b, err
	}
	first := err
	for _, other := range f.a.relays.Candidates(0) {
		if other.String() == f.base.String() {
			continue
		}
		f.a.stats.failovers.Add(1)
		if b, err = f.a.readMeta(ctx, other, name, max); err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// readMeta GETs base/-/tuf/name and reads at most max bytes of it. A 404
// wraps tufclient.ErrNotFound: the end of the root chain.
func (a *Agent) readMeta(ctx context.Context, base *url.URL, name string, max int64) ([]byte, error) {
	return a.readMetaSince(ctx, base, name, max, nil)
}

// readMetaSince is readMeta asking the relay to answer 304 when its file
// is held (If-None-Match: the ETag relays give metadata, its sha256), and
// held when it does: a file that changes in place (rollout.json) costs no
// body while it is unchanged.
func (a *Agent) readMetaSince(ctx context.Context, base *url.URL, name string, max int64, held []byte) ([]byte, error) {
	u := base.String() + wire.TUFPath(name)
	var hdr http.Header
	if held != nil {
		hdr = http.Header{"If-None-Match": {digest.FromBytes(held).ETag()}}
	}
	resp, err := a.get(ctx, u, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case held != nil && resp.StatusCode == http.StatusNotModified:
		return held, nil
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", name, tufclient.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, statusError(resp.StatusCode, wire.TUFPath(name))
	}
	b, err := catalog.Read(resp.Body, resp.ContentLength, max, a.spoolDir())
	if errors.Is(err, catalog.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %s from %s: %w", ErrCatalogTooLarge, name, base.Redacted(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// spoolDir is where metadata of unknown length is spooled while it is
// read (catalog.Read): the state directory; "" (the system's temp
// directory) when the agent discards.
func (a *Agent) spoolDir() string {
	if a.cfg.Discard {
		return ""
	}
	return a.stateDir()
}

// stateDir creates Dir (0755: the objects are for whoever reads them) and
// Dir/.relayd-agent (0750) if need be, and returns the latter. If that
// fails, the writes that need them say why.
func (a *Agent) stateDir() string {
	dir := filepath.Join(a.cfg.Dir, StateDir)
	if a.cfg.Discard {
		return dir
	}
	if err := os.MkdirAll(a.cfg.Dir, 0o755); err == nil {
		_ = os.Mkdir(dir, 0o750)
	}
	return dir
}
