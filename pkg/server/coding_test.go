package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/contentcoding"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/object"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/wire"
)

// blobSource serves keys from a store, ETag the digest, as a relay serves
// objects the signed metadata lists.
type blobSource struct {
	s    *store.Store
	keys map[string]digest.Digest
}

func (b *blobSource) Get(_ context.Context, key string) (*object.Object, error) {
	d, ok := b.keys[key]
	if !ok {
		return nil, &Error{Status: http.StatusNotFound, Code: "not_found", Msg: key}
	}
	r, err := b.s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	return &object.Object{Key: key, Size: r.Size, ETag: d.ETag(), Cache: object.Hit,
		Header: http.Header{"Content-Type": {"application/x-tar"}}, Body: r.Body(false)}, nil
}

// gitTar is relayd's source at a commit: real, text-heavy data.
func gitTar(t *testing.T, commit string) []byte {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("no git checkout: %v", err)
	}
	out, err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "archive", "--format=tar", commit, "pkg").Output()
	if err != nil {
		t.Skipf("git archive %s: %v", commit, err)
	}
	return out
}

func TestEncodedResponses(t *testing.T) {
	t.Parallel()
	old, new := gitTar(t, "1a3492b"), gitTar(t, "c681af2")
	st, err := store.Open(store.DefaultConfig(t.TempDir()), zerolog.Nop(), clock.NewFake(time.Unix(1e9, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	src := &blobSource{s: st, keys: map[string]digest.Digest{}}
	for key, b := range map[string][]byte{"old.tar": old, "new.tar": new} {
		w, err := st.Create(int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		e, err := w.Commit(key, store.Entry{}, digest.Digest{})
		if err != nil {
			t.Fatal(err)
		}
		src.keys[key] = e.Digest
	}
	enc, err := contentcoding.Open(contentcoding.DefaultConfig(t.TempDir()), st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewContent(ContentConfig{Source: src, Encoder: enc,
		Relays: func() wire.Relays { return wire.Relays{} }}, zerolog.New(zerolog.NewTestWriter(t))))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	oldD, newD := src.keys["old.tar"], src.keys["new.tar"]
	unknown := digest.FromBytes([]byte("a blob nobody has"))

	for _, tc := range []struct {
		name       string
		header     map[string]string
		wantStatus int
		wantCoding string
		dict       []byte
	}{
		{"identity", nil, 200, "", nil},
		{"gzip only", map[string]string{"Accept-Encoding": "gzip"}, 200, "", nil},
		{"zstd", map[string]string{"Accept-Encoding": "gzip, zstd"}, 200, "zstd", nil},
		{"dcz", map[string]string{"Accept-Encoding": "zstd, dcz", wire.AvailableDictionaryHeader: contentcoding.FormatAvailableDictionary(oldD)}, 200, "dcz", old},
		{"dcz against a blob the relay lacks", map[string]string{"Accept-Encoding": "zstd, dcz", wire.AvailableDictionaryHeader: contentcoding.FormatAvailableDictionary(unknown)}, 200, "zstd", nil},
		{"dcz against a blob the relay lacks, no zstd", map[string]string{"Accept-Encoding": "dcz", wire.AvailableDictionaryHeader: contentcoding.FormatAvailableDictionary(unknown)}, 200, "", nil},
		{"revalidation is about the identity", map[string]string{"Accept-Encoding": "zstd", "If-None-Match": newD.ETag()}, 304, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/new.tar", nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Encoding") != tc.wantCoding {
				t.Fatalf("status %d coding %q, want %d %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), tc.wantStatus, tc.wantCoding)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), wire.AvailableDictionaryHeader) {
				t.Errorf("Vary %q does not name the coding fields", resp.Header.Values("Vary"))
			}
			if resp.StatusCode == http.StatusNotModified {
				return
			}
			body, err := contentcoding.Decode(resp.Body, tc.wantCoding, tc.dict, int64(len(new)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(body)
			if err != nil || !bytes.Equal(got, new) {
				t.Fatalf("decoded body: err %v, equal %v", err, bytes.Equal(got, new))
			}
			if tc.wantCoding != "" && resp.ContentLength >= int64(len(new)) {
				t.Errorf("%s body of %d bytes for a %d-byte object", tc.wantCoding, resp.ContentLength, len(new))
			}
			if tc.wantCoding != "" && resp.Header.Get("Etag") == newD.ETag() {
				t.Error("an encoded form has the identity's ETag")
			}
		})
	}

	// Resuming an encoded transfer: Range with If-Range of the form.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/new.tar", nil)
	req.Header.Set("Accept-Encoding", "zstd")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req.Header.Set("Range", "bytes=100-")
	req.Header.Set("If-Range", resp.Header.Get("Etag"))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(tail, whole[100:]) {
		t.Fatalf("resume of the zstd form: status %d, %d bytes, want 206 and the form's bytes from 100", resp.StatusCode, len(tail))
	}
}
