package hierarchy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/hops"
	"github.com/relayd/relayd/pkg/ratelog"
	"github.com/relayd/relayd/pkg/relayclient"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/wire"
)

// Sentinel errors for callers to map to statuses.
var (
	// ErrUnavailable: no upstream could be reached or every one failed.
	ErrUnavailable = errors.New("hierarchy: upstream unavailable")
	// ErrTimeout: an upstream did not answer or stalled mid-body.
	ErrTimeout = errors.New("hierarchy: upstream timed out")
	// ErrNoUpstream: the relay has no upstream configured.
	ErrNoUpstream = errors.New("hierarchy: no upstream configured")
)

// Config says where upstream traffic goes and how patient it is.
type Config struct {
	// Upstreams are base URLs: object P is fetched from {base}/P.
	Upstreams []string
	// Proxy, if set, is an HTTP(S) proxy URL every upstream request goes
	// through (CONNECT for https). Default none.
	Proxy string
	// ConnectTimeout bounds a TCP (and TLS) connect. Default 3s.
	ConnectTimeout time.Duration
	// StallTimeout is how long an upstream may send nothing — no response
	// headers, or no body bytes — before it counts as failed. Default 10s.
	StallTimeout time.Duration
	// UserAgent is sent on every request. Default "relayd".
	UserAgent string
	// TLS configures upstream certificate checks; nil = system roots.
	TLS *tls.Config
	// Group is this relay's group, added to the loop guard's path on
	// every upstream request. Empty for peer clients: a peer request
	// stays inside the group.
	Group string
	// Node is this relay's name, sent on event streams and reports.
	Node string
	// Auth signs reports and event streams with the tree key, as Group
	// and Node; nil: no tree key (see Watch and SendReport).
	Auth *treeauth.Signer
	// CertClaims is set when the relay presents a client certificate to
	// https parents: a parent with a peer CA takes it as proof, so the
	// relay claims to be a child relay there even without a tree key.
	CertClaims bool
	// Fallback are base URLs (a grandparent group or the origin) used
	// only when every upstream has failed. Default none: serve what is
	// cached and fail the rest.
	Fallback []string
	// Rate caps the bytes per second pulled from upstreams and fallbacks
	// together (fills and mirror syncs alike). 0: no cap.
	Rate int64
	// Schedule (ParseSchedule; "" none): transfer windows of background
	// traffic, in Location (nil: time.Local, TZ); ForegroundRate: agents'
	// fills' own cap (0: none); Urgent: path patterns (security/**) whose
	// background transfers ignore the window. See rate.go.
	Schedule       string
	Location       *time.Location
	ForegroundRate int64
	Urgent         []string
	// Refresh is how often the parent group's relays are re-read from
	// {upstream}/-/relays. Default 30s.
	Refresh time.Duration
	// BehindWait is how long a request for a generation waits for parents
	// that are up but have not completed it, before the fallback (or an
	// error). Default 10s.
	BehindWait time.Duration
	// FollowRedirects follows an upstream's redirects (at most 5, never
	// https to http) instead of passing them on; the answer then carries
	// the first redirect's freshness, never the target's. Default false.
	FollowRedirects bool
	// Clock schedules stall guards, waits and refreshes (tests pass a
	// clock.Fake). Default nil: the wall clock.
	Clock clock.Timers
}

// errBehind: a parent has not completed the generation asked for.
var errBehind = errors.New("parent has not completed the generation yet")

// isBehind reports whether resp is a relay's 503 generation_behind. It
// reads at most 1 KiB of the body and puts it back in front of the rest,
// which the caller closes.
func isBehind(resp *http.Response) bool {
	if resp.StatusCode != http.StatusServiceUnavailable {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	return strings.Contains(string(b), `"generation_behind"`)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{ConnectTimeout: 3 * time.Second, StallTimeout: 10 * time.Second, UserAgent: "relayd", Refresh: 30 * time.Second,
		BehindWait: 10 * time.Second}
}

// Client fetches objects from the configured upstreams.
type Client struct {
	cfg      Config
	log      zerolog.Logger
	seeds    []*url.URL // as configured
	fallback []*url.URL
	http     *http.Client
	limit    *limiter     // nil without a rate cap or schedule
	traffic  traffic      // WAN bytes by kind (traffic.go)
	refused  atomic.Int64 // answers that could not continue a transfer (resume.go)
	clock    clock.Timers
	list     *relayclient.List // seeds, learned parents, fallbacks (parents.go)

	mu       sync.Mutex
	lastLoop string

	loops, failovers, resumes, fallbacks atomic.Int64

	sleep func(context.Context, time.Duration) bool // Watch's pauses; nil: a timer (tests set it)

	lim *ratelog.Limiter // upstream failure warnings: one line per interval

	noCredOnce sync.Once // "not in the parents' tree" is said once

	plain   plainBackoff // upstreams that answered 404 at /-/relays or /-/report (plain.go)
	codings codings      // encoded transfers (coding.go)
}

// New checks the configuration and builds a client.
func New(cfg Config, log zerolog.Logger) (*Client, error) {
	def := DefaultConfig()
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = def.ConnectTimeout
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = def.StallTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = def.UserAgent
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = def.Refresh
	}
	if cfg.BehindWait <= 0 {
		cfg.BehindWait = def.BehindWait
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	c := &Client{cfg: cfg, log: log.With().Str("component", "upstream").Logger(), clock: cfg.Clock,
		lim: ratelog.New(cfg.Clock, ratelog.DefaultEvery)}
	c.plain.clock = cfg.Clock
	for _, s := range cfg.Upstreams {
		u, err := ParseBase(s)
		if err != nil {
			return nil, err
		}
		c.seeds = append(c.seeds, u)
	}
	for _, s := range cfg.Fallback {
		u, err := ParseBase(s)
		if err != nil {
			return nil, fmt.Errorf("fallback: %w", err)
		}
		c.fallback = append(c.fallback, u)
	}
	c.list = c.newParentList()
	if len(c.fallback) > 0 && len(c.seeds) == 0 {
		return nil, errors.New("hierarchy: a fallback needs an upstream to fall back from")
	}
	var err error
	if c.limit, err = limiterFor(cfg); err != nil {
		return nil, err
	}
	hc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	c.http = hc
	return c, nil
}

// newHTTPClient is the client's HTTP client: through cfg.Proxy (or the
// environment's), with cfg's timeouts and TLS.
func newHTTPClient(cfg Config) (*http.Client, error) {
	proxy := http.ProxyFromEnvironment
	if cfg.Proxy != "" {
		pu, err := url.Parse(cfg.Proxy)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("hierarchy: upstream proxy %q: want http://host:port", cfg.Proxy)
		}
		proxy = http.ProxyURL(pu)
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 proxy,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       cfg.TLS,
			TLSHandshakeTimeout:   cfg.ConnectTimeout,
			ResponseHeaderTimeout: cfg.StallTimeout,
			// Bytes are stored as the upstream sent them; Go must not
			// ask for gzip and decode it behind our back.
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// A redirect reaches the client as the upstream sent it, unless
		// FollowRedirects (e.g. a CDN-fronted upstream): then at most 5
		// are followed, never from https to http.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !cfg.FollowRedirects {
				return http.ErrUseLastResponse
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to http refused")
			}
			return nil
		},
	}, nil
}

// ParseBase checks an upstream base URL: http or https, a host, no query.
func ParseBase(s string) (*url.URL, error) {
	u, err := cleanpath.Base(s)
	if err != nil {
		return nil, fmt.Errorf("hierarchy: upstream: %w", err)
	}
	return u, nil
}

// Stats counts what the client did to keep transfers going.
type Stats = admindoc.TransferStats

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{Failovers: c.failovers.Load(), Resumes: c.resumes.Load(), Fallbacks: c.fallbacks.Load(),
		ResumesRefused: c.refused.Load()}
}

// Fetch GETs the object key from an upstream, trying them in random order
// and skipping those that fail (connect error, timeout, 5xx); when all
// fail, it tries the fallbacks. hdr adds request headers (conditional
// validators, Range, wire.GenerationHeader). The response body fails
// with ErrTimeout when the upstream stalls for StallTimeout; a body that
// breaks mid-transfer goes on from another upstream with Range, so the
// caller sees one whole body. The caller closes it.
func (c *Client) Fetch(ctx context.Context, key string, hdr http.Header) (*http.Response, error) {
	return c.fetchCoded(ctx, key, hdr, nil)
}

// FetchAnswer is Fetch for a client that passes the upstream's answer on
// (a plain cache): when every upstream and fallback answered with a
// status >= 500 (not a relay's generation_behind or loop refusal), the
// last such answer is returned, with its body, instead of an error.
func (c *Client) FetchAnswer(ctx context.Context, key string, hdr http.Header) (*http.Response, error) {
	var last lastAnswer
	resp, err := c.fetchCoded(ctx, key, hdr, &last)
	if err != nil && last.resp != nil && ctx.Err() == nil && !errors.Is(err, hops.ErrLoop) {
		return last.resp, nil
	}
	last.close()
	return resp, err
}

// lastAnswer keeps the last 5xx answer of a FetchAnswer.
type lastAnswer struct{ resp *http.Response }

func (l *lastAnswer) keep(resp *http.Response) {
	l.close()
	l.resp = resp
}

func (l *lastAnswer) close() {
	if l != nil && l.resp != nil {
		l.resp.Body.Close()
		l.resp = nil
	}
}

func (c *Client) fetch(ctx context.Context, key string, hdr http.Header, last *lastAnswer) (*http.Response, error) {
	if len(c.seeds) == 0 {
		return nil, ErrNoUpstream
	}
	cls, err := c.limit.admit(ctx, key) // a window of rate 0 holds background requests
	if err != nil {
		return nil, err
	}
	want, _ := strconv.ParseUint(hdr.Get(wire.GenerationHeader), 10, 64)
	resp, base, err := c.tryAll(ctx, c.candidates(want), key, hdr, last)
	// Parents that are up but have not completed the generation asked
	// for will have it in moments (their group is syncing it): wait for
	// them (BehindWait) before going to the fallback or failing.
	for wait := c.clock.Now().Add(c.cfg.BehindWait); errors.Is(err, errBehind) && c.clock.Now().Before(wait); {
		if !clock.Sleep(ctx, c.clock, 250*time.Millisecond) {
			return nil, ctx.Err()
		}
		resp, base, err = c.tryAll(ctx, c.candidates(want), key, hdr, last)
	}
	if err != nil && len(c.fallback) > 0 && ctx.Err() == nil && !errors.Is(err, hops.ErrLoop) {
		c.fallbacks.Add(1)
		c.lim.Event(&c.log, zerolog.WarnLevel, "fallback").Err(err).Str("key", key).Msg("every upstream failed; trying the fallback")
		resp, base, err = c.tryAll(ctx, c.list.Fallbacks(), key, hdr, last)
	}
	if err != nil {
		return nil, err
	}
	redirectFreshness(resp)
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent {
		resp.Body = c.resumable(ctx, resp, base, key, hdr)
	}
	// Counted as it comes off the network, before any decoding.
	resp.Body = c.limit.body(ctx, cls, c.traffic.wireBody(key, resp), resp.ContentLength)
	return resp, nil
}

// tryAll asks each base in turn until one answers below 500 (or, for a
// Required request, also not 404: see answered).
func (c *Client) tryAll(ctx context.Context, bases []*url.URL, key string, hdr http.Header, last *lastAnswer) (*http.Response, *url.URL, error) {
	var errs []error
	failed, behind, missing := false, 0, 0
	for _, base := range bases {
		if failed {
			c.failovers.Add(1) // moving on from a parent that failed
		}
		resp, err := c.fetchOne(ctx, base, key, hdr)
		if err == nil && answered(ctx, resp.StatusCode) {
			return resp, base, nil
		}
		if err == nil {
			err = fmt.Errorf("%s: status %d", base.Host, resp.StatusCode)
			switch {
			case isBehind(resp):
				err = fmt.Errorf("%w: %s", errBehind, base.Host)
			case resp.StatusCode == http.StatusLoopDetected:
				err = c.refusedAsLoop(base, "the request")
			case resp.StatusCode == http.StatusNotFound:
				missing++ // a Required request: see ErrNotFound
			}
			if last != nil && resp.StatusCode >= 500 && !errors.Is(err, errBehind) && !errors.Is(err, hops.ErrLoop) {
				last.keep(resp) // FetchAnswer passes it on if no one does better
			} else {
				resp.Body.Close()
			}
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		errs = append(errs, err)
		// A parent behind is healthy, only not done yet: Fetch waits for
		// it, and it is neither a failure nor worth a warning.
		if failed = !errors.Is(err, errBehind); failed {
			c.markFailed(base)
			c.lim.Event(&c.log, zerolog.WarnLevel, "failed "+base.Host).Err(err).Str("upstream", base.Redacted()).Str("key", key).
				Msg("upstream failed, trying the next")
		} else {
			behind++
		}
	}
	if behind < len(errs) {
		c.Refresh() // parents failed: the group may have changed under us
	}
	err := errors.Join(errs...)
	switch {
	case missing > 0 && missing == len(errs):
		return nil, nil, fmt.Errorf("%w (%w): %w", ErrNotFound, ErrUnavailable, err)
	case errors.Is(err, hops.ErrLoop):
		return nil, nil, err
	case errors.Is(err, errBehind):
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case isTimeout(err):
		return nil, nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// FetchFrom GETs key from one given base URL (a peer relay of the group),
// with the same timeouts; the caller closes the body.
func (c *Client) FetchFrom(ctx context.Context, base, key string, hdr http.Header) (*http.Response, error) {
	u, err := ParseBase(base)
	if err != nil {
		return nil, err
	}
	resp, err := c.fetchOne(ctx, u, key, hdr)
	if err != nil && isTimeout(err) {
		return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return resp, err
}

func (c *Client) fetchOne(ctx context.Context, base *url.URL, key string, hdr http.Header) (*http.Response, error) {
	// A key may end in "?" and the client's raw query, which goes to
	// the upstream as it came.
	path, query, _ := strings.Cut(key, "?")
	u := cleanpath.ObjectURL(base, path)
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hierarchy: request %s: %w", key, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	c.setHeaders(ctx, req)
	// No byte for StallTimeout (headers or body) fails the request with
	// ErrTimeout.
	return relayclient.Guard{Clock: c.clock, Stall: c.cfg.StallTimeout, Err: ErrTimeout}.Do(c.http, req)
}

// setHeaders adds what every request of this client carries: the user
// agent (unless the client's own is forwarded) and the loop guard's path.
func (c *Client) setHeaders(ctx context.Context, req *http.Request) {
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	if path := hops.From(ctx); c.cfg.Group != "" {
		req.Header.Set(wire.PathHeader, hops.Format(path, c.cfg.Group))
	} else if len(path) > 0 {
		req.Header.Set(wire.PathHeader, strings.Join(path, ","))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// redirectFreshness gives a response reached through redirects the
// freshness of the first redirect: what is cached under the requested
// URL lives as long as the redirect said, never as long as its target.
func redirectFreshness(resp *http.Response) {
	// Each request after a redirect records, as Response, the redirect
	// that caused it: the last one found walking back is the first.
	var redirect *http.Response
	for r := resp.Request; r != nil && r.Response != nil; r = r.Response.Request {
		redirect = r.Response
	}
	if redirect == nil {
		return
	}
	for _, k := range []string{"Cache-Control", "Expires", "Date", "Age", "Pragma"} {
		if v, ok := redirect.Header[k]; ok {
			resp.Header[k] = v
		} else {
			delete(resp.Header, k)
		}
	}
	if resp.Header.Get("Cache-Control") == "" && resp.Header.Get("Expires") == "" {
		// The redirect gave no freshness: neither does its target.
		resp.Header.Set("Cache-Control", "no-cache")
	}
}
