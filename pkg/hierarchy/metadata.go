// The tree's TUF metadata as a relay's TUF client fetches it: from the
// parents in random order with failover, then the fallbacks, bounded.
package hierarchy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// Metadata fetches the files of TUFPrefix through the client: a
// tufclient.Fetcher over the hierarchy. Every file is asked of every
// parent and fallback before the tree counts as not having it (Required),
// except root versions: a missing N.root.json is the end of the root
// chain, the answer a client walking it expects from any one of them.
// timestamp.json and the rollout gates (rollout.json) are asked with
// Cache-Control: no-cache, so no HTTP cache on the way answers them from
// memory; the versioned files are immutable,
// and the TUF client keeps those it verified.
type Metadata struct {
	c *Client
	// spoolDir is where a file of unknown length is spooled (catalog.Read).
	spoolDir string
	// want returns the generation the relay was told of and has not
	// verified yet (0: none), asked of the parents with
	// wire.GenerationHeader: one that has not completed it answers 503
	// and the client moves on.
	want func() uint64
}

var _ tufclient.Fetcher = (*Metadata)(nil)

// Metadata returns the fetcher of the tree's metadata. spoolDir is where a
// file of unknown length is spooled while it is read; want, if set, gives
// the generation to ask for (see Metadata).
func (c *Client) Metadata(spoolDir string, want func() uint64) *Metadata {
	return &Metadata{c: c, spoolDir: spoolDir, want: want}
}

// FetchMeta GETs /-/tuf/name and reads at most limit bytes of it.
func (m *Metadata) FetchMeta(ctx context.Context, name string, limit int64) ([]byte, error) {
	if !wire.TUFName(name) {
		return nil, fmt.Errorf("hierarchy: %q is not a TUF metadata name: %w", name, tufclient.ErrNotFound)
	}
	hdr := http.Header{}
	ctx = Background(ctx)
	if !strings.HasSuffix(name, ".root.json") {
		ctx = Required(ctx)
	}
	if name == wire.GatesName {
		hdr.Set("Cache-Control", "no-cache")
	}
	if name == wire.TimestampName {
		hdr.Set("Cache-Control", "no-cache")
		if m.want != nil {
			if g := m.want(); g > 0 {
				hdr.Set(wire.GenerationHeader, strconv.FormatUint(g, 10))
			}
		}
	}
	resp, err := m.c.Fetch(ctx, strings.TrimPrefix(wire.TUFPath(name), "/"), hdr)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", tufclient.ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hierarchy: fetch %s: %w", name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s: status 404", tufclient.ErrNotFound, name)
	default:
		return nil, fmt.Errorf("hierarchy: fetch %s: status %d", name, resp.StatusCode)
	}
	b, err := catalog.Read(resp.Body, resp.ContentLength, limit, m.spoolDir)
	if err != nil {
		return nil, fmt.Errorf("hierarchy: %s: %w", name, err)
	}
	return b, nil
}
