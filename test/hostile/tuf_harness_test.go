package hostile

// The harness of the TUF attacks (tuf_*_test.go): a genuine repository
// published with pkg/tufrepo, metadata forged in the test with go-tuf's
// metadata API (the genuine keys read from the tree's key directory, an
// attacker's made here), evilrelay serving the tree the test rewrites
// while it runs, and `relayd agent sync` run as a real process.

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/proctest"
)

// signer is a key that signs metadata: a genuine role's or an attacker's.
type signer struct {
	id  string
	pub *metadata.Key
	signature.Signer
}

// attackerKey is a new ed25519 key that no root lists.
func attackerKey(t testing.TB) *signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, priv)
}

func newSigner(t testing.TB, priv ed25519.PrivateKey) *signer {
	t.Helper()
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return &signer{id: id, pub: k, Signer: s}
}

// roleKey is the genuine key of role name in dir (PKCS#8 PEM name.key).
func roleKey(t testing.TB, dir, name string) *signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s.key: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("%s.key: %T, want ed25519", name, k)
	}
	return newSigner(t, priv)
}

// tufDir is the served TUF repository of tr.
func (tr *tree) tufDir() string { return filepath.Join(tr.Dir, "-", "tuf") }

// meta reads a served metadata file of tr.
func (tr *tree) meta(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.tufDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serve writes a metadata file into tr's served repository (evilrelay
// reads it again at the next request), whole at once: a reader never
// sees half of it.
func (tr *tree) serve(t testing.TB, name string, b []byte) {
	t.Helper()
	tmp := filepath.Join(tr.tufDir(), ".tmp-"+name)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(tr.tufDir(), name)); err != nil {
		t.Fatal(err)
	}
}

// snapshot is what tr's repository holds now, by served name.
func (tr *tree) snapshot(t testing.TB) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(tr.tufDir())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			m[e.Name()] = tr.meta(t, e.Name())
		}
	}
	return m
}

// latest is the served name of the newest version of role.
func (tr *tree) latest(t testing.TB, role string) string {
	t.Helper()
	re := regexp.MustCompile(`^([0-9]+)\.` + regexp.QuoteMeta(role) + `\.json$`)
	best, name := int64(0), ""
	for n := range tr.snapshot(t) {
		if m := re.FindStringSubmatch(n); m != nil {
			if v, _ := strconv.ParseInt(m[1], 10, 64); v > best {
				best, name = v, n
			}
		}
	}
	if name == "" {
		t.Fatalf("no version of %s in %s", role, tr.tufDir())
	}
	return name
}

// write sets a file of the tree (an object, published or not).
func (tr *tree) write(t testing.TB, p string, b []byte) {
	t.Helper()
	name := filepath.Join(tr.Dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(tr.tufDir(), ".tmp-object")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// forge decodes raw, lets edit change it and signs it with keys (all
// signatures it had are dropped).
func forge[T metadata.Roles](t testing.TB, raw []byte, edit func(*metadata.Metadata[T]), keys ...*signer) []byte {
	t.Helper()
	md, err := (&metadata.Metadata[T]{}).FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(md)
	}
	md.ClearSignatures()
	for _, k := range keys {
		if _, err := md.Sign(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// targetFile is the signed entry of an object of bytes b (no custom).
func targetFile(t testing.TB, p string, b []byte) *metadata.TargetFiles {
	t.Helper()
	tf, err := metadata.TargetFile().FromBytes(p, b, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

// syncResult is one `relayd agent sync` run.
type syncResult struct {
	stdout, stderr string
	err            error
	took           time.Duration
}

func (r syncResult) String() string {
	return "err " + errString(r.err) + "\nstdout " + r.stdout + "\nstderr " + r.stderr
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// agentSync runs `relayd agent sync` into out against relays (the trust
// anchored at root) and returns what it said.
func agentSync(t testing.TB, root, out string, relays []string, args ...string) syncResult {
	t.Helper()
	argv := append([]string{relaydBin, "agent", "sync", "--quiet", "--relay", strings.Join(relays, ","),
		"--root", root, "--out", out, "--retry-budget", "300ms"}, args...)
	t0 := time.Now()
	stdout, stderr, err := proctest.Run(t, 90*time.Second, argv...)
	return syncResult{stdout: stdout, stderr: stderr, err: err, took: time.Since(t0)}
}

// mustSync runs a sync that must succeed.
func mustSync(t testing.TB, root, out string, relays []string, args ...string) {
	t.Helper()
	if r := agentSync(t, root, out, relays, args...); r.err != nil {
		t.Fatalf("sync: %s", r)
	}
}

// refusedSync runs a sync that must fail (exit status 1) with an error
// that says want (each string in stderr).
func refusedSync(t testing.TB, root, out string, relays []string, want ...string) syncResult {
	t.Helper()
	r := agentSync(t, root, out, relays)
	var ee interface{ ExitCode() int }
	if !errors.As(r.err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("sync succeeded or failed otherwise, want exit 1: %s", r)
	}
	t.Logf("refused in %s: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("sync: stderr does not say %q: %s", w, r.stderr)
		}
	}
	return r
}

// outFiles is what out holds outside the agent's state directory.
func outFiles(t testing.TB, out string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".relayd-agent" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		m[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantOut fails the test unless out holds exactly want.
func wantOut(t testing.TB, out string, want map[string][]byte) {
	t.Helper()
	got := outFiles(t, out)
	for p, b := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s missing from the output directory", p)
		} else if !bytes.Equal(g, b) {
			t.Errorf("%s holds %d bytes sha256 %.12s, want %d bytes %.12s", p, len(g), sum(g), len(b), sum(b))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s appeared in the output directory", p)
		}
	}
}
