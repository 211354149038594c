package proxycache

// Interim (1xx) responses of the upstream to a fill (102 Processing, 103
// Early Hints) are passed on to the requests waiting for the fill's final
// answer, as they arrive, and never stored (RFC 9110 §15.2, RFC 9111 §3).

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
)

// Bounds of what one fill passes on: an upstream is hostile.
const (
	maxInterims      = 8
	maxInterimFields = 16
)

// interim is one 1xx response.
type interim struct {
	status int
	header http.Header
}

// InterimWriter is where a request's interim responses go: the client's
// http.ResponseWriter.
type InterimWriter interface {
	Header() http.Header
	WriteHeader(status int)
}

type interimKey struct{}

// WithClient is WithRequest for a request whose client also takes the
// interim responses: each 1xx response (but 100 and 101) the upstream
// sends before its final answer to the fill the request waits for is
// written to w (its fields set in w's header for WriteHeader, then
// removed), on the goroutine that called Get, before Get returns.
func WithClient(ctx context.Context, h http.Header, w InterimWriter) context.Context {
	return &requestCtx{Context: ctx, h: h, w: w}
}

// requestCtx carries a client's request to the cache: one allocation per
// request, on the hit path too.
type requestCtx struct {
	context.Context
	h http.Header
	w InterimWriter
}

func (c *requestCtx) Value(key any) any {
	switch key.(type) {
	case requestKey:
		return c.h
	case interimKey:
		if c.w != nil {
			return c.w
		}
	}
	return c.Context.Value(key)
}

func interimSink(ctx context.Context) InterimWriter {
	w, _ := ctx.Value(interimKey{}).(InterimWriter)
	return w
}

// traceInterims makes ctx record the 1xx responses of the upstream request
// made with it into f.
func (f *fill) traceInterims(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == http.StatusContinue || code == http.StatusSwitchingProtocols {
			return nil
		}
		out := make(http.Header, min(len(h), maxInterimFields))
		drop := connectionNamed(http.Header(h))
		for k, v := range h {
			if len(out) < maxInterimFields && !hopByHop[k] && !drop[k] && !ownHeader(k) {
				out[k] = v
			}
		}
		f.imu.Lock()
		if len(f.interims) < maxInterims {
			f.interims = append(f.interims, interim{code, out})
			close(f.interimCh)
			f.interimCh = make(chan struct{})
		}
		f.imu.Unlock()
		return nil
	}})
}

// waitReady waits for the fill's answer, sending the interim responses
// that come before it to the request's client (WithClient).
func (f *fill) waitReady(ctx context.Context) error {
	send := interimSink(ctx)
	if send == nil {
		select {
		case <-f.ready:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	sent := 0
	for {
		f.imu.Lock()
		pending, more := f.interims[sent:], f.interimCh
		f.imu.Unlock()
		for _, im := range pending {
			h := send.Header()
			for k, v := range im.header {
				h[k] = v
			}
			send.WriteHeader(im.status)
			for k := range im.header {
				delete(h, k)
			}
		}
		sent += len(pending)
		select {
		case <-f.ready:
			return nil
		case <-more:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
