// The tree's TUF metadata as the node serves it and follows it: /-/tuf/
// of a relay (from its TUF client, or passed through by a plain proxy),
// the consistent target names, the origin's timestamp re-sign, and how
// fresh the metadata is (status, reports, metrics).
package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/origin"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// maxPassedTimestamp bounds the timestamp.json a plain proxy passes on:
// it lists one file; go-tuf's own default cap is 16 KiB.
const maxPassedTimestamp = 1 << 20

// metadata is /-/tuf/<name> of a relay. A relay that verifies (--root)
// serves what its TUF client verified, with the timestamp of its live
// generation and the gates it holds (gates.go); a plain proxy passes the
// files on from its upstream: the versioned ones through its cache (they
// are immutable), timestamp.json and rollout.json from the upstream every
// time, never from the cache.
func (n *Node) metadata(ctx context.Context, name string) (*object.Object, error) {
	if n.mirror == nil {
		if name == wire.TimestampName || name == wire.GatesName {
			return n.passFresh(ctx, name)
		}
		return n.cache.Get(ctx, strings.TrimPrefix(wire.TUFPath(name), "/"))
	}
	if name == wire.GatesName {
		return n.gatesFile()
	}
	b, ok := n.mirror.File(name)
	switch {
	case !ok && name == wire.TimestampName:
		// Not "404, no metadata": a child must retry, not take this
		// relay for a plain tree.
		return nil, &server.Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Msg: "no verified metadata yet"}
	case !ok:
		return nil, &server.Error{Status: http.StatusNotFound, Code: "not_found", Msg: name + " is not among the verified metadata of this relay"}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	var modified time.Time
	if l := n.mirror.Live(); l != nil && name == wire.TimestampName {
		modified = l.Verified
	}
	return &object.Object{Key: strings.TrimPrefix(wire.TUFPath(name), "/"), Size: int64(len(b)), ETag: digest.FromBytes(b).ETag(),
		LastModified: modified, Header: h, Body: object.BytesBody(b)}, nil
}

// passFresh fetches timestamp.json or rollout.json from the upstream for
// a plain proxy, bounded, and passes it on as it came: both change in
// place, so they are never cached.
func (n *Node) passFresh(ctx context.Context, name string) (*object.Object, error) {
	limit := min(maxPassedTimestamp, n.cfg.Mirror.CatalogMax)
	if name == wire.GatesName {
		limit = wire.MaxGatesSize
	}
	hdr := http.Header{}
	hdr.Set("Cache-Control", "no-cache")
	resp, err := n.up.Fetch(ctx, strings.TrimPrefix(wire.TUFPath(name), "/"), hdr)
	if err != nil {
		return nil, server.AsError(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, &server.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "the upstream has no " + name}
	default:
		return nil, &server.Error{Status: http.StatusBadGateway, Code: "upstream_failed", Msg: fmt.Sprintf("upstream answered %d for %s", resp.StatusCode, name)}
	}
	b, err := catalog.Read(resp.Body, resp.ContentLength, limit, "")
	if err != nil {
		return nil, &server.Error{Status: http.StatusBadGateway, Code: "upstream_failed", Msg: name + " from the upstream", Err: err}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return &object.Object{Key: strings.TrimPrefix(wire.TUFPath(name), "/"), Size: int64(len(b)),
		ETag: digest.FromBytes(b).ETag(), Header: h, Body: object.BytesBody(b)}, nil
}

// targetKey maps a consistent target name, dir/<sha256 hex>.name, to the
// path the verified catalog lists with that sha256 (dir/name), so that
// a stock TUF client with hash-prefixed target names is served from the
// store by digest. Any other key, and every key of a relay that verifies
// nothing, is returned as is.
func (n *Node) targetKey(key string) string {
	if n.mirror == nil {
		return key
	}
	p, d, ok := catalog.SplitConsistent(key)
	l := n.mirror.Live()
	if !ok || l == nil {
		return key
	}
	if _, listed := l.Catalog.Lookup(key); listed {
		return key // a path that merely looks hashed
	}
	if o, listed := l.Catalog.Lookup(p); listed && o.Digest == d {
		return p
	}
	return key
}

// openResigner loads the origin's timestamp key, if one is configured.
func (n *Node) openResigner(cfg Config, clk clock.Clock) error {
	if cfg.TimestampKeyFile == "" {
		return nil
	}
	key, err := tufrepo.LoadKeyRing([]string{cfg.TimestampKeyFile}, nil)
	if err != nil {
		return fmt.Errorf("timestamp-key: %w", err)
	}
	timers, ok := clk.(clock.Timers)
	if !ok {
		return errors.New("timestamp-key: the node's clock cannot schedule")
	}
	// Every minute, or a tenth of a short expiry: a timestamp is
	// re-signed with at least 40% of its lifetime left.
	every := min(time.Minute, cfg.TimestampExpiry/10)
	n.resign = &origin.Resigner{Tree: cfg.Root, Key: key, Expiry: cfg.TimestampExpiry, Every: every, Clock: timers,
		Log: n.log.With().Str("component", "timestamp").Logger()}
	return nil
}

// freshness is when this node last verified the tree's metadata and when
// that metadata expires (zero when it verifies none). An origin knows
// only its timestamp's expiry, read from the file it serves.
func (n *Node) freshness() (verified, expires time.Time) {
	switch {
	case n.mirror != nil:
		if l := n.mirror.Live(); l != nil {
			return l.Verified, l.Expires
		}
	case n.origin != nil:
		if ts, err := n.origin.ReadTimestamp(); err == nil {
			return time.Time{}, ts.Expires
		}
	}
	return time.Time{}, time.Time{}
}
