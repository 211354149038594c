package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// Sentinel errors; every error the package returns wraps one of them or a
// TUF error (tufclient.ErrRollback, tufclient.ErrExpired, go-tuf's
// metadata errors for bad signatures, …).
var (
	// ErrConfig: the configuration is unusable.
	ErrConfig = errors.New("agent: bad configuration")
	// ErrUnavailable: every relay failed for the whole retry budget.
	ErrUnavailable = errors.New("agent: no relay could serve the request")
	// ErrStalled: a relay sent nothing (or less than MinRate) for
	// StallTimeout.
	ErrStalled = errors.New("agent: relay stalled")
	// ErrDigestMismatch: the bytes a relay sent do not hash to the
	// catalog's sha256.
	ErrDigestMismatch = errors.New("agent: sha256 does not match the catalog")
	// ErrSize: a relay sent a body longer or shorter than the catalog
	// says.
	ErrSize = errors.New("agent: size does not match the catalog")
	// ErrRedirect: a relay redirected to another host.
	ErrRedirect = errors.New("agent: redirect to another host refused")
	// ErrNotInCatalog: a requested path is not in the catalog.
	ErrNotInCatalog = errors.New("agent: not in the catalog")
	// ErrStatus: a relay answered with an unexpected status.
	ErrStatus = errors.New("agent: unexpected status")
	// ErrCatalogTooLarge: a relay sent a metadata file longer than TUF
	// allows (the length the snapshot or timestamp lists, the default
	// maximum of an unlisted one) or than MaxCatalogBytes.
	ErrCatalogTooLarge = errors.New("agent: metadata too large")
)

// Config is what an Agent needs. Start from DefaultConfig.
type Config struct {
	// Relays are the bootstrap base URLs (http or https): where the agent
	// first asks for the group's relays, and what it falls back to when
	// every relay it learned has failed. Required.
	Relays []string
	// Root is the initial trusted TUF root: the repository's
	// 1.root.json, distributed with the agent (--root). Newer roots are
	// learned from the relays, each verified by the one before. Required.
	Root []byte
	// Dir is the directory objects are written to, and where the agent
	// keeps its state: Dir/.relayd-agent/tuf holds the TUF metadata it
	// trusts (its rollback floor across restarts), state.json the
	// generation verified and the digests of the files it wrote.
	// Required unless Discard is set.
	Dir string
	// Discard verifies objects and throws the bytes away instead of
	// writing them; state is then kept in memory only. For load tests.
	// Default false.
	Discard bool
	// Include selects the catalog paths Sync and Watch bring to Dir, as
	// globs ("security/**", "software/linux-amd64/*/agent.tgz"; "*" within
	// a path segment, "**" any number of segments). Default: everything.
	Include []string
	// ID names the agent to relays on its event stream (presence,
	// /v1/agents). At most 128 bytes. Default: the host name.
	ID string
	// Group is the agent's group: the branch or site it belongs to
	// ("branch-a", --group). When the trusted root lists a rollout role,
	// the ring patterns of the signed gates are matched against it
	// (wire.Gates.RingOf) to decide which generation the agent installs;
	// a relay cannot move the agent into another ring. Outcome reports
	// carry it. At most wire.MaxNameLen bytes. Default "": the last ring.
	Group string
	// UserAgent is sent on every request. Default "relayd-agent".
	UserAgent string
	// ConnectTimeout bounds a TCP (and TLS) connect to a relay. Used only
	// for the default transport. Default 3s.
	ConnectTimeout time.Duration
	// StallTimeout is how long a relay may take to send response headers,
	// and the window in which a body must make progress (see MinRate),
	// before the agent moves to the next relay. Default 10s.
	StallTimeout time.Duration
	// MinRate is the lowest transfer rate, in bytes per second averaged
	// over StallTimeout, below which a body counts as stalled: it catches
	// a relay that drips a byte now and then. 0 counts only a body that
	// sends nothing at all. Default 1024 (1 KiB/s).
	MinRate int64
	// RetryBudget bounds the total time one object or metadata update
	// spends retrying after every relay failed. Default 2m.
	RetryBudget time.Duration
	// BackoffMin and BackoffMax bound the wait between two rounds over all
	// relays; it doubles each round, with jitter. Defaults 500ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Refresh is how often the relay list is re-read from GET /-/relays;
	// it is also re-read when every relay failed. Default 5m.
	Refresh time.Duration
	// StreamIdle is how long an event stream may be silent (relays ping
	// every 15 s) before Watch takes the relay for gone. Default 45s.
	StreamIdle time.Duration
	// SyncJitter spreads Watch's syncs: after an announcement the sync
	// starts at a random moment within this window, so that the
	// thousands of agents of one relay do not all ask it in the same
	// millisecond (a publish reaches them within a second). 0: at once.
	// Default 2s (DefaultConfig; a zero Config has none).
	SyncJitter time.Duration
	// Workers is how many objects Sync downloads at once. Default 4.
	Workers int
	// MaxCatalogBytes caps any one metadata file a relay may send, in
	// bytes, on top of TUF's own limits (the lengths snapshot and
	// timestamp list): a longer one is refused (ErrCatalogTooLarge)
	// having cost at most this much memory (catalog.Read). Default
	// catalog.DefaultMaxBytes (256 MiB).
	MaxCatalogBytes int64
	// MaxRelays caps the relays taken from one /-/relays answer (the
	// body itself is capped at 1 MiB). Default 256.
	MaxRelays int
	// TLS configures certificate checks for https relays with the default
	// transport; nil: system roots.
	TLS *tls.Config
	// Transport, if set, carries every request instead of the default
	// transport (which honours HTTPS_PROXY and friends). Timeouts above
	// still apply to headers and bodies. Default nil.
	Transport http.RoundTripper
	// StreamTransport, if set, carries the event streams of Watch.
	// Default: Transport.
	StreamTransport http.RoundTripper
	// Clock schedules stall guards, backoff and reconnects (tests pass a
	// clock.Fake). Default nil: the wall clock.
	Clock clock.Timers
	// OnPlan, if set, is called when Sync or Fetch knows what it will
	// download: how many objects and bytes.
	OnPlan func(objects int, bytes int64)
	// OnBytes, if set, is called as object bytes arrive (n new bytes;
	// negative when a download restarts and its bytes no longer count).
	// It may be called from several goroutines at once.
	OnBytes func(n int64)
	// OnObject, if set, is called when an object is done: written and
	// verified (err nil) or given up (err set). It may be called from
	// several goroutines at once.
	OnObject func(path string, size int64, err error)
	// OnAnnounce, if set, is called with the generation of every catalog
	// event Watch receives (the current one when a stream opens, then
	// each new one), before it syncs.
	OnAnnounce func(generation uint64)
	// TUFMemo, if set, is shared by the agents of one process (relayd
	// loadgen): metadata bytes another agent of it verified already are
	// not verified again (tufclient.Memo). Every request is still made.
	// Default nil.
	TUFMemo *tufclient.Memo
}

// DefaultConfig returns the defaults; set Relays, Root and Dir.
func DefaultConfig() Config {
	return Config{
		UserAgent:       "relayd-agent",
		ConnectTimeout:  3 * time.Second,
		StallTimeout:    10 * time.Second,
		MinRate:         1024,
		RetryBudget:     2 * time.Minute,
		BackoffMin:      500 * time.Millisecond,
		BackoffMax:      30 * time.Second,
		Refresh:         5 * time.Minute,
		StreamIdle:      45 * time.Second,
		SyncJitter:      2 * time.Second,
		Workers:         4,
		MaxCatalogBytes: catalog.DefaultMaxBytes,
		MaxRelays:       256,
	}
}

// fill sets the zero fields to their defaults and checks the rest.
func (c *Config) fill() error {
	def := DefaultConfig()
	if c.UserAgent == "" {
		c.UserAgent = def.UserAgent
	}
	durs := []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.ConnectTimeout, def.ConnectTimeout}, {&c.StallTimeout, def.StallTimeout}, {&c.RetryBudget, def.RetryBudget},
		{&c.BackoffMin, def.BackoffMin}, {&c.BackoffMax, def.BackoffMax}, {&c.Refresh, def.Refresh}, {&c.StreamIdle, def.StreamIdle}}
	for _, d := range durs {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.SyncJitter < 0 {
		return fmt.Errorf("%w: SyncJitter %s is negative", ErrConfig, c.SyncJitter)
	}
	if c.MinRate < 0 {
		return fmt.Errorf("%w: MinRate %d is negative", ErrConfig, c.MinRate)
	}
	if c.Workers <= 0 {
		c.Workers = def.Workers
	}
	if c.MaxCatalogBytes <= 0 {
		c.MaxCatalogBytes = def.MaxCatalogBytes
	}
	if c.MaxRelays <= 0 {
		c.MaxRelays = def.MaxRelays
	}
	if len(c.Relays) == 0 {
		return fmt.Errorf("%w: no relay URL (--relay)", ErrConfig)
	}
	if len(c.Root) == 0 {
		return fmt.Errorf("%w: no trusted root to verify the metadata (--root 1.root.json)", ErrConfig)
	}
	if c.Dir == "" && !c.Discard {
		return fmt.Errorf("%w: no output directory (--out)", ErrConfig)
	}
	if len(c.ID) > 128 {
		return fmt.Errorf("%w: agent id longer than 128 bytes", ErrConfig)
	}
	if len(c.Group) > wire.MaxNameLen {
		return fmt.Errorf("%w: group longer than %d bytes", ErrConfig, wire.MaxNameLen)
	}
	return nil
}

// ParseBase checks a relay base URL: http or https, a host, no query or
// fragment. The path, if any, is kept without its trailing slash.
func ParseBase(s string) (*url.URL, error) {
	u, err := cleanpath.Base(s)
	if err == nil && u.User != nil {
		err = fmt.Errorf("%q carries credentials", s)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: relay URL: %w", ErrConfig, err)
	}
	return u, nil
}
