package catalog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/digest"
)

func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func obj(path string, body string) Object {
	k, p, v := Classify(path)
	return Object{Path: path, Size: int64(len(body)), Digest: digest.FromBytes([]byte(body)), Kind: k, Platform: p, Version: v}
}

func TestSignParseRoundTrip(t *testing.T) {
	t.Parallel()
	pub, priv := testKey(t)
	c := &Catalog{Generation: 3, Published: time.Unix(1700000000, 0).UTC(), Objects: []Object{
		obj("software/linux-amd64/1.2/agent.tgz", "b"), obj("security/x.patch", "a"), obj("readme", "c"),
	}}
	file, err := Sign(c, priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(file, pub)
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 3 || len(s.Objects) != 3 || s.Objects[0].Path != "readme" {
		t.Fatalf("parsed %+v", s.Catalog)
	}
	o, ok := s.Lookup("software/linux-amd64/1.2/agent.tgz")
	if !ok || o.Kind != KindSoftware || o.Platform != "linux-amd64" || o.Version != "1.2" {
		t.Fatalf("lookup = %+v %v", o, ok)
	}
	if s.FileDigest != digest.FromBytes(file) || !bytes.Equal(s.Raw, file) {
		t.Fatal("raw bytes or file digest differ")
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	pub, priv := testKey(t)
	_, otherPriv := testKey(t)
	good := func(objs ...Object) []byte {
		b, err := Sign(&Catalog{Generation: 1, Objects: objs}, priv)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// signRaw signs arbitrary JSON, to test what Sign itself refuses.
	signRaw := func(body string) []byte {
		sig := ed25519.Sign(priv, []byte(body))
		return []byte("relayd-catalog-v1 ed25519 " + base64.StdEncoding.EncodeToString(sig) + "\n" + body)
	}
	otherSigned, err := Sign(&Catalog{Generation: 1}, otherPriv)
	if err != nil {
		t.Fatal(err)
	}
	tampered := good(obj("a", "x"))
	tampered[len(tampered)-5] ^= 1
	d := digest.FromBytes(nil).String()
	for _, tc := range []struct {
		name string
		file []byte
		want error
	}{
		{"other key", otherSigned, ErrBadSignature},
		{"tampered body", tampered, ErrBadSignature},
		{"truncated", good(obj("a", "x"))[:60], ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"no newline", []byte(strings.Repeat("a", 300)), ErrMalformed},
		{"unknown algorithm", bytes.Replace(good(), []byte("ed25519"), []byte("rsa4096"), 1), ErrUnknownAlgorithm},
		{"unknown version", bytes.Replace(good(), []byte("-v1"), []byte("-v9"), 1), ErrUnknownAlgorithm},
		{"bad base64", []byte("relayd-catalog-v1 ed25519 !!!\n{}"), ErrMalformed},
		{"not json", signRaw("not json"), ErrMalformed},
		{"unknown field", signRaw(`{"generation":1,"objects":[],"extra":1}`), ErrMalformed},
		{"trailing data", signRaw(`{"generation":1,"objects":[]}{}`), ErrMalformed},
		{"generation zero", signRaw(`{"generation":0,"objects":[]}`), ErrMalformed},
		{"dot-dot path", signRaw(`{"generation":1,"objects":[{"path":"a/../../etc/passwd","size":1,"sha256":"` + d + `","kind":"other"}]}`), ErrMalformed},
		{"absolute path", signRaw(`{"generation":1,"objects":[{"path":"/etc/passwd","size":1,"sha256":"` + d + `","kind":"other"}]}`), ErrMalformed},
		{"reserved path", signRaw(`{"generation":1,"objects":[{"path":"-/catalog","size":1,"sha256":"` + d + `","kind":"other"}]}`), ErrMalformed},
		{"duplicate path", signRaw(`{"generation":1,"objects":[{"path":"a","size":1,"sha256":"` + d + `","kind":"other"},{"path":"a","size":1,"sha256":"` + d + `","kind":"other"}]}`), ErrMalformed},
		{"negative size", signRaw(`{"generation":1,"objects":[{"path":"a","size":-1,"sha256":"` + d + `","kind":"other"}]}`), ErrMalformed},
		{"bad digest", signRaw(`{"generation":1,"objects":[{"path":"a","size":1,"sha256":"md5:00","kind":"other"}]}`), ErrMalformed},
		{"unknown kind", signRaw(`{"generation":1,"objects":[{"path":"a","size":1,"sha256":"` + d + `","kind":"malware"}]}`), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.file, pub); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for path, want := range map[string][3]string{
		"security/2026/x.patch":          {KindSecurity, "", ""},
		"software/win-x64/2.0/setup.msi": {KindSoftware, "win-x64", "2.0"},
		"software/win-x64/setup.msi":     {KindSoftware, "", ""},
		"debian/dists/stable/InRelease":  {KindOther, "", ""},
		"securityx/a":                    {KindOther, "", ""},
	} {
		k, p, v := Classify(path)
		if [3]string{k, p, v} != want {
			t.Errorf("Classify(%q) = %q %q %q, want %q", path, k, p, v, want)
		}
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPublishGenerations(t *testing.T) {
	t.Parallel()
	pub, priv := testKey(t)
	tree := writeTree(t, map[string]string{
		"security/a.patch":               "patch",
		"software/linux-amd64/1.0/agent": "agent",
		"other.txt":                      "other",
		"software/linux-amd64/1.0/empty": "",
	})
	ctx := context.Background()
	r1, err := Publish(ctx, tree, priv, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r1.Changed || r1.Catalog.Generation != 1 || r1.Files != 4 {
		t.Fatalf("first publish: %+v", r1)
	}
	raw, err := os.ReadFile(filepath.Join(tree, "-", "catalog"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(raw, pub)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := s.Lookup("security/a.patch"); o.Digest != digest.FromBytes([]byte("patch")) || o.Kind != KindSecurity {
		t.Fatalf("object %+v", o)
	}
	// Unchanged tree: same generation, file untouched.
	r2, err := Publish(ctx, tree, priv, PublishOptions{})
	if err != nil || r2.Changed || r2.Catalog.Generation != 1 {
		t.Fatalf("unchanged publish: %+v %v", r2, err)
	}
	// One change: generation 2.
	if err := os.WriteFile(filepath.Join(tree, "other.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	r3, err := Publish(ctx, tree, priv, PublishOptions{})
	if err != nil || !r3.Changed || r3.Catalog.Generation != 2 {
		t.Fatalf("changed publish: %+v %v", r3, err)
	}
	// Another key cannot take over the generation sequence.
	_, other := testKey(t)
	if _, err := Publish(ctx, tree, other, PublishOptions{}); err == nil {
		t.Fatal("publish with another key over an existing catalog succeeded")
	}
}

func TestPublishRefusesKeyInTree(t *testing.T) {
	t.Parallel()
	tree := writeTree(t, map[string]string{"a": "a"})
	priv, _, err := GenerateKeys(filepath.Join(tree, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(context.Background(), tree, key, PublishOptions{KeyFile: priv}); err == nil || !strings.Contains(err.Error(), "inside the tree") {
		t.Fatalf("err = %v, want a refusal naming the key inside the tree", err)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	privPath, pubPath, err := GenerateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(privPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, want 0600", st.Mode().Perm())
	}
	if _, _, err := GenerateKeys(dir); err == nil {
		t.Fatal("GenerateKeys overwrote existing keys")
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("public key does not match private key")
	}
	if _, err := LoadPublicKey(privPath); err == nil {
		t.Fatal("private key accepted as public key")
	}
	if err := os.Chmod(privPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(privPath); err == nil {
		t.Fatal("world-readable private key accepted")
	}
}

func FuzzParse(f *testing.F) {
	pub, priv := testKey(f)
	good, err := Sign(&Catalog{Generation: 2, Objects: []Object{obj("a/b", "x"), obj("security/c", "y")}}, priv)
	if err != nil {
		f.Fatal(err)
	}
	// The fuzzer supplies the JSON body, which is signed here, so the
	// decoder and the checks behind the signature are what is fuzzed.
	nl := bytes.IndexByte(good, '\n')
	f.Add(good[nl+1:])
	f.Add([]byte(`{"generation":1,"objects":[{"path":"a/../b","size":1,"sha256":"x","kind":"other"}]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		sig := ed25519.Sign(priv, body)
		file := append([]byte("relayd-catalog-v1 ed25519 "+base64.StdEncoding.EncodeToString(sig)+"\n"), body...)
		s, err := Parse(file, pub)
		if err != nil {
			return
		}
		// Whatever parses was signed by us and is safe to use.
		if s.Generation == 0 {
			t.Fatal("generation 0 accepted")
		}
		for _, o := range s.Objects {
			if o.Size < 0 || strings.Contains("/"+o.Path+"/", "/../") || strings.HasPrefix(o.Path, "/") {
				t.Fatalf("unsafe object accepted: %+v", o)
			}
		}
	})
}

func TestTargetRoundTrip(t *testing.T) {
	o := Object{Path: "software/linux-amd64/1.2.3/agent.tar.gz", Size: 42, Digest: digest.FromBytes([]byte("x")), Kind: KindSoftware, Platform: "linux-amd64", Version: "1.2.3"}
	tf, err := TargetFile(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromTarget(o.Path, tf)
	if err != nil || got != o {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, o)
	}
	delete(tf.Hashes, "sha256")
	if _, err := FromTarget(o.Path, tf); err == nil {
		t.Fatal("a target without sha256 was accepted")
	}
	c, err := New(3, time.Time{}, []Object{o})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Lookup(o.Path); !ok || got != o {
		t.Fatalf("Lookup: %+v %v", got, ok)
	}
	if _, err := New(3, time.Time{}, []Object{{Path: "../x", Digest: o.Digest, Kind: KindOther}}); err == nil {
		t.Fatal("New accepted an unsafe path")
	}
}
