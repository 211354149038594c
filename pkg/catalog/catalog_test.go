package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/digest"
)

func obj(path string, body string) Object {
	k, p, v := Classify(path)
	return Object{Path: path, Size: int64(len(body)), Digest: digest.FromBytes([]byte(body)), Kind: k, Platform: p, Version: v}
}

// New refuses what is not safe to use, whoever signed it.
func TestNewRejects(t *testing.T) {
	t.Parallel()
	d := digest.FromBytes(nil)
	o := func(path string, size int64, dg digest.Digest, kind string) Object {
		return Object{Path: path, Size: size, Digest: dg, Kind: kind}
	}
	for _, tc := range []struct {
		name string
		gen  uint64
		objs []Object
	}{
		{"generation zero", 0, nil},
		{"dot-dot path", 1, []Object{o("a/../../etc/passwd", 1, d, KindOther)}},
		{"absolute path", 1, []Object{o("/etc/passwd", 1, d, KindOther)}},
		{"reserved path", 1, []Object{o("-/tuf/1.root.json", 1, d, KindOther)}},
		{"reserved dir", 1, []Object{o("-", 1, d, KindOther)}},
		{"duplicate path", 1, []Object{o("a", 1, d, KindOther), o("a", 1, d, KindOther)}},
		{"negative size", 1, []Object{o("a", -1, d, KindOther)}},
		{"no digest", 1, []Object{o("a", 1, digest.Digest{}, KindOther)}},
		{"unknown kind", 1, []Object{o("a", 1, d, "malware")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.gen, time.Time{}, tc.objs); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want %v", err, ErrMalformed)
			}
		})
	}
	c, err := New(3, time.Time{}, []Object{obj("software/linux-amd64/1.2/agent.tgz", "b"), obj("security/x.patch", "a"), obj("readme", "c")})
	if err != nil || c.Objects[0].Path != "readme" {
		t.Fatalf("New: %v, first %+v", err, c)
	}
	if got, ok := c.Lookup("software/linux-amd64/1.2/agent.tgz"); !ok || got.Platform != "linux-amd64" || got.Version != "1.2" {
		t.Fatalf("Lookup = %+v %v", got, ok)
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

func TestKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	privPath, pubPath, err := GenerateKeyPair(dir, "targets")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(privPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, want 0600", st.Mode().Perm())
	}
	if _, _, err := GenerateKeyPair(dir, "targets"); err == nil {
		t.Fatal("GenerateKeyPair overwrote existing keys")
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
