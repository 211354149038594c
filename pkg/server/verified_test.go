package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/proxycache"
)

// TestRangeOfAListedObjectWaitsForVerification: a Range request for an
// object whose ranges must be verified (VerifiedRanges: the catalog lists
// it) gets its 206 only after Verified returned nil, and a 502 when it
// fails; other requests and plain objects stream as before.
func TestRangeOfAListedObjectWaitsForVerification(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16) // above object.SmallObject
	const etag = `"sha256:whatever"`
	for _, tc := range []struct {
		name       string
		listed     bool
		verifyErr  error
		header     map[string]string
		wantStatus int
		wantBody   []byte
		wantCode   string
		wantWaits  bool
	}{
		{name: "listed, range, verified", listed: true, header: map[string]string{"Range": "bytes=0-99"},
			wantStatus: 206, wantBody: body[:100], wantWaits: true},
		{name: "listed, range, digest mismatch", listed: true, verifyErr: proxycache.ErrDigestMismatch, header: map[string]string{"Range": "bytes=0-99"},
			wantStatus: 502, wantCode: "digest_mismatch", wantWaits: true},
		{name: "listed, range with a matching If-Range, digest mismatch", listed: true, verifyErr: proxycache.ErrDigestMismatch,
			header: map[string]string{"Range": "bytes=10-", "If-Range": etag}, wantStatus: 502, wantCode: "digest_mismatch", wantWaits: true},
		{name: "listed, range with another If-Range: the whole object, streamed", listed: true, verifyErr: proxycache.ErrDigestMismatch,
			header: map[string]string{"Range": "bytes=0-99", "If-Range": `"other"`}, wantStatus: 200, wantBody: body},
		{name: "listed, whole object: streamed", listed: true, verifyErr: proxycache.ErrDigestMismatch, wantStatus: 200, wantBody: body},
		{name: "plain, range: as before", header: map[string]string{"Range": "bytes=0-99"}, verifyErr: proxycache.ErrDigestMismatch,
			wantStatus: 206, wantBody: body[:100]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var waited atomic.Bool
			srv := httptest.NewServer(Handle(func(w http.ResponseWriter, r *http.Request) error {
				return ServeObject(w, r, &object.Object{Key: "k", Size: int64(len(body)), ETag: etag, Body: object.BytesBody(body),
					VerifiedRanges: tc.listed, Verified: func(context.Context) error { waited.Store(true); return tc.verifyErr }})
			}))
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/k", nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.wantStatus, trunc(got))
			}
			if waited.Load() != tc.wantWaits {
				t.Errorf("waited for verification: %v, want %v", waited.Load(), tc.wantWaits)
			}
			if tc.wantCode != "" {
				var e struct{ Code string }
				if json.Unmarshal(got, &e) != nil || e.Code != tc.wantCode || resp.Header.Get("Content-Range") != "" {
					t.Fatalf("body %s, Content-Range %q; want code %s and no range", trunc(got), resp.Header.Get("Content-Range"), tc.wantCode)
				}
				return
			}
			if !bytes.Equal(got, tc.wantBody) {
				t.Fatalf("body of %d bytes, want %d", len(got), len(tc.wantBody))
			}
		})
	}
}
