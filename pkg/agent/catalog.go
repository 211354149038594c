// Getting the catalog: from the first relay that serves one that verifies
// with the pinned key and is not older than the newest seen.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/wire"
)

// errBehind: a relay serves an older generation than the one announced.
var errBehind = errors.New("agent: relay behind the announced generation")

// Catalog returns the newest catalog from the relays, verified with the
// pinned key. A relay serving a generation older than the newest the agent
// has seen is skipped (catalog.ErrRollback once every relay did so).
func (a *Agent) Catalog(ctx context.Context) (*catalog.Signed, error) {
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
func (a *Agent) catalog(ctx context.Context, want uint64) (*catalog.Signed, error) {
	floor := a.Generation()
	var best *catalog.Signed
	err := a.retryUntil(ctx, "catalog", func(base *url.URL) error {
		c, err := a.readCatalog(ctx, base)
		if err != nil {
			return err
		}
		if c.Generation < floor {
			return fmt.Errorf("%w: relay serves generation %d, this agent has seen %d", catalog.ErrRollback, c.Generation, floor)
		}
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
	a.setCurrent(best)
	return best, nil
}

// readCatalog GETs and verifies base/-/catalog.
func (a *Agent) readCatalog(ctx context.Context, base *url.URL) (*catalog.Signed, error) {
	a.mu.Lock()
	cur := a.cur
	a.mu.Unlock()
	hdr := http.Header{}
	if cur != nil {
		hdr.Set("If-None-Match", cur.FileDigest.ETag())
	}
	resp, err := a.get(ctx, base.String()+wire.CatalogPath, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && cur != nil:
		return cur, nil
	case resp.StatusCode != http.StatusOK:
		return nil, statusError(resp.StatusCode, wire.CatalogPath)
	}
	c, err := catalog.ReadSigned(resp.Body, resp.ContentLength, a.cfg.MaxCatalogBytes, a.cfg.PublicKey, a.spoolDir())
	switch {
	case errors.Is(err, catalog.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", ErrCatalogTooLarge, err)
	case errors.Is(err, catalog.ErrBadSignature), errors.Is(err, catalog.ErrMalformed), errors.Is(err, catalog.ErrUnknownAlgorithm):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	return c, nil
}

// spoolDir is where a catalog of unknown length is spooled while it is
// read (catalog.Read): the state directory, created if need be; "" (the
// system's temp directory) when the agent discards.
func (a *Agent) spoolDir() string {
	if a.cfg.Discard {
		return ""
	}
	dir := filepath.Join(a.cfg.Dir, StateDir)
	_ = os.MkdirAll(dir, 0o750) // if it fails, catalog.Read uses os.TempDir
	return dir
}

// setCurrent makes c the catalog in hand and records its generation in
// the state.
func (a *Agent) setCurrent(c *catalog.Signed) {
	a.mu.Lock()
	if a.cur != nil && a.cur.Generation > c.Generation {
		a.mu.Unlock()
		return // a concurrent call got a newer one
	}
	a.cur = c
	a.mu.Unlock()
	a.state.seen(c.Generation, c.FileDigest.String())
}
