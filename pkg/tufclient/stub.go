// Package tufclient: TEMPORARY STUB of the contract API (helper "agents"),
// dropped before main's real package is merged. Not for review.
package tufclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/relayd/relayd/pkg/catalog"
)

var (
	ErrNotFound = errors.New("tufclient: not found")
	ErrExpired  = errors.New("tufclient: metadata expired")
	ErrRollback = errors.New("tufclient: rollback")
)

type Fetcher interface {
	FetchMeta(ctx context.Context, name string, max int64) ([]byte, error)
}

type Options struct {
	Dir      string
	Now      func() time.Time
	MaxBytes int64
	Log      zerolog.Logger
}

type State struct {
	Catalog                       *catalog.Catalog
	Timestamp                     []byte
	TimestampVersion, RootVersion int64
	Expires                       time.Time
	Verified                      time.Time
}

type Client struct {
	root []byte
	opt  Options
	mu   sync.Mutex
	cur  *State
}

func New(trustedRoot []byte, opt Options) (*Client, error) {
	if _, err := trustedmetadata.New(trustedRoot); err != nil {
		return nil, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Client{root: trustedRoot, opt: opt}, nil
}

func (c *Client) Current() *State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *Client) File(name string) ([]byte, bool) { return nil, false }

func (c *Client) Update(ctx context.Context, f Fetcher) (*State, error) {
	tm, err := trustedmetadata.New(c.root)
	if err != nil {
		return nil, err
	}
	tm.RefTime = c.opt.Now()
	for v := tm.Root.Signed.Version + 1; ; v++ {
		b, err := f.FetchMeta(ctx, strconv.FormatInt(v, 10)+".root.json", 512<<10)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if _, err := tm.UpdateRoot(b); err != nil {
			return nil, err
		}
	}
	b, err := f.FetchMeta(ctx, "timestamp.json", 16<<10)
	if err != nil {
		return nil, err
	}
	ts, err := tm.UpdateTimestamp(b)
	if err != nil {
		var exp *metadata.ErrExpiredMetadata
		if errors.As(err, &exp) {
			return nil, fmt.Errorf("%w since %s", ErrExpired, "?")
		}
		return nil, err
	}
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	if cur != nil && ts.Signed.Version < cur.TimestampVersion {
		return nil, fmt.Errorf("%w: timestamp %d < %d", ErrRollback, ts.Signed.Version, cur.TimestampVersion)
	}
	sv := ts.Signed.Meta["snapshot.json"].Version
	if cur != nil && uint64(sv) < cur.Catalog.Generation {
		return nil, fmt.Errorf("%w: snapshot %d < %d", ErrRollback, sv, cur.Catalog.Generation)
	}
	b, err = f.FetchMeta(ctx, strconv.FormatInt(sv, 10)+".snapshot.json", 64<<20)
	if err != nil {
		return nil, err
	}
	if _, err := tm.UpdateSnapshot(b, false); err != nil {
		return nil, err
	}
	var objs []catalog.Object
	var walk func(role, parent string) error
	walk = func(role, parent string) error {
		v := tm.Snapshot.Signed.Meta[role+".json"].Version
		b, err := f.FetchMeta(ctx, strconv.FormatInt(v, 10)+"."+role+".json", 64<<20)
		if err != nil {
			return err
		}
		t, err := tm.UpdateDelegatedTargets(b, role, parent)
		if err != nil {
			return err
		}
		for p, tf := range t.Signed.Targets {
			o, err := catalog.FromTarget(p, tf)
			if err != nil {
				return err
			}
			objs = append(objs, o)
		}
		if t.Signed.Delegations != nil {
			for _, r := range t.Signed.Delegations.Roles {
				if err := walk(r.Name, role); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("targets", "root"); err != nil {
		return nil, err
	}
	cat, err := catalog.New(uint64(sv), ts.Signed.Expires, objs)
	if err != nil {
		return nil, err
	}
	st := &State{Catalog: cat, Timestamp: b, TimestampVersion: ts.Signed.Version, RootVersion: tm.Root.Signed.Version,
		Expires: ts.Signed.Expires, Verified: c.opt.Now()}
	c.mu.Lock()
	c.cur = st
	c.mu.Unlock()
	return st, nil
}
