package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/glob"
	"github.com/relayd/relayd/pkg/ratelog"
	"github.com/relayd/relayd/pkg/relayclient"
	"github.com/relayd/relayd/pkg/tufclient"
)

// Agent fetches from a group's relays. It is safe for concurrent use, but
// one directory must be written by one Agent at a time.
type Agent struct {
	cfg     Config
	log     zerolog.Logger
	include *glob.Filter // cfg.Include, compiled
	http    *http.Client
	stream  *http.Client
	relays  *relayclient.List
	state   *state
	clock   clock.Timers      // cfg.Clock, or the wall clock
	lim     *ratelog.Limiter  // resume refusals: one line per interval
	tuf     *tufclient.Client // the trusted metadata, verified updates

	stats counters

	sleep func(context.Context, time.Duration) bool // Watch's pause after a replacement; nil: a timer (tests set it)
	// jitter picks the delay of a sync after an announcement within
	// cfg.SyncJitter; rand.N unless a test sets it.
	jitter func(time.Duration) time.Duration
}

// counters are the Stats, updated atomically.
type counters struct {
	requests, failovers, resumes, restarts, bytes, objects, syncs atomic.Int64
	resumesRefused, codingFallbacks                               atomic.Int64
}

// Stats counts what an Agent did.
type Stats struct {
	// Requests: HTTP requests sent to relays.
	Requests int64 `json:"requests"`
	// Failovers: requests that moved on from a failed relay.
	Failovers int64 `json:"failovers"`
	// Resumes: downloads that went on with Range after a relay failed.
	Resumes int64 `json:"resumes"`
	// Restarts: downloads thrown away and started over (wrong bytes).
	Restarts int64 `json:"restarts"`
	// ResumesRefused: answers to a resume that were not the object the
	// catalog lists (another ETag or length, a 200): not appended.
	ResumesRefused int64 `json:"resumes_refused"`
	// CodingFallbacks: encoded answers that did not decode to the signed
	// bytes; each makes that download ask for the identity form.
	CodingFallbacks int64 `json:"coding_fallbacks"`
	// Bytes: object bytes received (decoded).
	Bytes int64 `json:"bytes"`
	// Objects: objects written (or verified, with Discard).
	Objects int64 `json:"objects"`
	// Syncs: Sync calls that succeeded.
	Syncs int64 `json:"syncs"`
}

// Sub is what was counted between earlier and s.
func (s Stats) Sub(earlier Stats) Stats {
	return Stats{Requests: s.Requests - earlier.Requests, Failovers: s.Failovers - earlier.Failovers,
		Resumes: s.Resumes - earlier.Resumes, Restarts: s.Restarts - earlier.Restarts, Bytes: s.Bytes - earlier.Bytes,
		ResumesRefused: s.ResumesRefused - earlier.ResumesRefused, CodingFallbacks: s.CodingFallbacks - earlier.CodingFallbacks,
		Objects: s.Objects - earlier.Objects, Syncs: s.Syncs - earlier.Syncs}
}

// Stats returns the counters so far.
func (a *Agent) Stats() Stats {
	s := &a.stats
	return Stats{Requests: s.requests.Load(), Failovers: s.failovers.Load(), Resumes: s.resumes.Load(), Restarts: s.restarts.Load(),
		ResumesRefused: s.resumesRefused.Load(), CodingFallbacks: s.codingFallbacks.Load(),
		Bytes: s.bytes.Load(), Objects: s.objects.Load(), Syncs: s.syncs.Load()}
}

// New checks cfg, fills in its defaults and loads the state kept in
// cfg.Dir (created if need be): the files written, and the TUF metadata
// trusted so far.
func New(cfg Config, log zerolog.Logger) (*Agent, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		cfg.ID, _ = os.Hostname()
	}
	var boot []*url.URL
	for _, s := range cfg.Relays {
		u, err := ParseBase(s)
		if err != nil {
			return nil, err
		}
		boot = append(boot, u)
	}
	include, err := glob.New(cfg.Include)
	if err != nil {
		return nil, fmt.Errorf("%w: include: %w", ErrConfig, err)
	}
	a := &Agent{cfg: cfg, log: log.With().Str("component", "agent").Logger(), include: include, jitter: rand.N[time.Duration]}
	a.clock = cfg.Clock
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	a.lim = ratelog.New(a.clock, ratelog.DefaultEvery)
	a.relays = a.newRelayList(boot)
	tr := cfg.Transport
	if tr == nil {
		dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
		tr = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			TLSClientConfig:     cfg.TLS,
			TLSHandshakeTimeout: cfg.ConnectTimeout,
			// Objects are hashed as the relay sent them: no transparent
			// gzip.
			DisableCompression:  true,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}
	}
	st := cfg.StreamTransport
	if st == nil {
		st = tr
	}
	a.http = &http.Client{Transport: tr, CheckRedirect: sameHost}
	a.stream = &http.Client{Transport: st, CheckRedirect: sameHost}
	if a.state, err = loadState(cfg.Dir, cfg.Discard); err != nil {
		return nil, err
	}
	if a.tuf, err = a.newTUF(); err != nil {
		return nil, err
	}
	return a, nil
}

// sameHost is the redirect policy: a relay may redirect within itself
// (same scheme, host and port), at most 3 times; a redirect elsewhere is
// what a hostile relay would do to send the agent to a server of its
// choosing.
func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return fmt.Errorf("%w: more than 3 redirects", ErrRedirect)
	}
	if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("%w: %s redirected to %s://%s", ErrRedirect, via[0].URL.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// ID is the agent's id as relays see it.
func (a *Agent) ID() string { return a.cfg.ID }

// Generation is the newest catalog generation (snapshot version) the
// agent has verified, or seen in an earlier run (its state), 0 if none.
func (a *Agent) Generation() uint64 {
	g := a.state.generation()
	if st := a.tuf.Current(); st != nil && st.Catalog != nil {
		g = max(g, st.Catalog.Generation)
	}
	return g
}

// Relays lists the relays in the order the agent tries them now.
func (a *Agent) Relays() []string {
	var out []string
	for _, u := range a.relays.Candidates(0) {
		out = append(out, u.String())
	}
	return out
}

// get sends a GET to u and returns the response with a body guarded by
// the stall watchdog (relayclient.Guard): headers must come within
// StallTimeout, and the body must bring at least MinRate×StallTimeout
// bytes in every StallTimeout. The caller closes the body.
func (a *Agent) get(ctx context.Context, u string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", a.cfg.UserAgent)
	a.stats.requests.Add(1)
	return a.guard(false).Do(a.http, req)
}

// guard is the stall guard of a request to a relay: of the response
// headers only for an event stream (headersOnly), of the whole body
// otherwise.
func (a *Agent) guard(headersOnly bool) relayclient.Guard {
	return relayclient.Guard{Clock: a.clock, Stall: a.cfg.StallTimeout, MinRate: a.cfg.MinRate,
		HeadersOnly: headersOnly, Err: ErrStalled}
}

// backoff waits before round (1, 2, …) over all relays: BackoffMin
// doubled per round up to BackoffMax, with full jitter on the upper half.
// It returns false when ctx ends or the wait would pass deadline.
func (a *Agent) backoff(ctx context.Context, round int, deadline time.Time) bool {
	d := a.cfg.BackoffMin
	for i := 1; i < round && d < a.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = relayclient.Jitter(min(d, a.cfg.BackoffMax))
	if a.clock.Now().Add(d).After(deadline) {
		return false
	}
	return clock.Sleep(ctx, a.clock, d)
}

// retry runs try against each relay in turn until one succeeds, then
// re-reads the relay list, backs off and goes round again, within
// RetryBudget. what names the operation in the error.
func (a *Agent) retry(ctx context.Context, what string, try func(base *url.URL) error) error {
	return a.retryUntil(ctx, what, try, nil)
}

// retryUntil is retry that also stops after a round in which enough
// reports true.
func (a *Agent) retryUntil(ctx context.Context, what string, try func(base *url.URL) error, enough func() bool) error {
	deadline := a.clock.Now().Add(a.cfg.RetryBudget)
	var errs []error
	for round := 1; ; round++ {
		if round > 1 || a.relays.Stale() {
			a.refreshRelays(ctx)
		}
		for i, base := range a.relays.Candidates(0) {
			if i > 0 || round > 1 {
				a.stats.failovers.Add(1)
			}
			err := try(base)
			if err == nil {
				a.relays.OK(base)
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("agent: %s: %w", what, ctx.Err())
			}
			if errors.Is(err, errFatal) {
				return fmt.Errorf("agent: %s: %w", what, err)
			}
			a.relays.Failed(base)
			a.log.Warn().Err(err).Str("relay", base.Redacted()).Str("op", what).Msg("relay failed; trying the next")
			errs = append(errs, fmt.Errorf("%s: %w", base.Host, err))
			if len(errs) > 16 {
				errs = errs[len(errs)-16:]
			}
		}
		if enough != nil && enough() {
			return fmt.Errorf("agent: %s: %w", what, errors.Join(errs...))
		}
		if !a.backoff(ctx, round, deadline) {
			if ctx.Err() != nil {
				return fmt.Errorf("agent: %s: %w", what, ctx.Err())
			}
			return fmt.Errorf("agent: %s: %w after %d rounds: %w", what, ErrUnavailable, round, errors.Join(errs...))
		}
	}
}

// errFatal marks an error no other relay can fix (a local disk error).
var errFatal = errors.New("agent: local error")

type fatalError struct{ err error }

func (e fatalError) Error() string         { return e.err.Error() }
func (e fatalError) Unwrap() []error       { return []error{errFatal, e.err} }
func fatal(err error) error                { return fatalError{err} }
func statusError(code int, u string) error { return fmt.Errorf("%w %d from %s", ErrStatus, code, u) }
