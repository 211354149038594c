package hierarchy

// Requests of other methods than GET and HEAD (POST, PUT, DELETE, unknown
// ones): a plain cache passes them to its upstream once, never stored
// (RFC 9111 §4), and their answer back as it came.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/relayclient"
)

// Forward sends a request of method for key (path, then "?" and the raw
// query) with the header hdr and size bytes of body (-1: unknown, read to
// its end) to one upstream. It is sent once: another upstream (or a
// fallback) is tried only when no byte of the request could be sent (the
// connection failed), since the method may not be idempotent. Redirects
// are never followed (not even with FollowRedirects: a redirected POST
// would become a GET). The answer comes back whatever its status; the
// response body fails with ErrTimeout when the upstream stalls for
// StallTimeout. The caller closes it.
func (c *Client) Forward(ctx context.Context, method, key string, hdr http.Header, body io.Reader, size int64) (*http.Response, error) {
	if len(c.seeds) == 0 {
		return nil, ErrNoUpstream
	}
	hc := &http.Client{Transport: c.http.Transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	cb := &countingBody{r: body}
	var errs []error
	for _, base := range append(c.candidates(0), c.list.Fallbacks()...) {
		path, query, _ := strings.Cut(key, "?")
		u := cleanpath.ObjectURL(base, path)
		if query != "" {
			u += "?" + query
		}
		var rb io.Reader
		if body != nil && size != 0 {
			rb = cb
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rb)
		if err != nil {
			return nil, fmt.Errorf("hierarchy: request %s %s: %w", method, key, err)
		}
		req.ContentLength = max(size, -1)
		if rb == nil {
			req.ContentLength = 0
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		c.setHeaders(ctx, req)
		resp, err := relayclient.Guard{Clock: c.clock, Stall: c.cfg.StallTimeout, Err: ErrTimeout}.Do(hc, req)
		if err == nil {
			// A client waits for it: foreground, counted as WAN bytes.
			resp.Body = c.limit.body(ctx, ClassForeground, c.traffic.wireBody(key, resp), resp.ContentLength)
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", base.Host, err))
		if cb.n.Load() > 0 || !notSent(err) || ctx.Err() != nil {
			break // some of it went out: never sent twice
		}
		c.markFailed(base)
	}
	err := errors.Join(errs...)
	if isTimeout(err) {
		return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// countingBody counts the request body bytes read by the transport.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// notSent reports whether err is a failure to connect: nothing of the
// request reached the upstream.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
