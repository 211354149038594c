package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/relayd/relayd/pkg/httpx"
	"github.com/relayd/relayd/pkg/proxycache"
)

// Forwarder passes a request of another method than GET or HEAD upstream
// and returns the answer to send back (proxycache.Cache implements it).
type Forwarder interface {
	Forward(ctx context.Context, fr proxycache.ForwardRequest) (*http.Response, error)
}

// forward answers a request of another method than GET or HEAD for an
// object path: the upstream's answer as it came (status, fields, body),
// or notAllowed's 405 when the node forwards nothing of the kind.
func (c *Content) forward(w http.ResponseWriter, r *http.Request, notAllowed http.HandlerFunc) {
	Handle(func(w http.ResponseWriter, r *http.Request) error {
		key, err := objectKey(r)
		if err != nil {
			return err
		}
		ctx, err := c.guard(r, false)
		if err != nil {
			return err
		}
		resp, err := c.cfg.Forward.Forward(ctx, proxycache.ForwardRequest{Method: r.Method, Key: key, Host: r.Host,
			Header: r.Header, Body: r.Body, Size: r.ContentLength})
		switch {
		case errors.Is(err, proxycache.ErrNotForwarded):
			notAllowed(w, r)
			return nil
		case errors.Is(err, proxycache.ErrBodyTooLarge):
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Msg: "the request body is longer than this relay forwards", Err: err}
		case err != nil:
			return err
		}
		defer resp.Body.Close()
		if li := httpx.Fields(r.Context()); li != nil {
			li.Key = key
		}
		h := w.Header()
		for k, v := range resp.Header {
			h[k] = v
		}
		if resp.ContentLength >= 0 && resp.StatusCode >= 200 && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
			h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		}
		w.WriteHeader(resp.StatusCode)
		if _, err := io.Copy(w, resp.Body); err != nil {
			if li := httpx.Fields(r.Context()); li != nil {
				li.Err, li.Code = err, "aborted"
			}
			panic(http.ErrAbortHandler) // the client sees an incomplete answer
		}
		return nil
	})(w, r)
}
