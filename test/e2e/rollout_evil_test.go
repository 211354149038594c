package e2e

// A relay that lies about the rollout (issue 15): it passes the legit
// tree's files on from a real relay but serves forged or replayed gates,
// and claims the canary ring's group for itself.

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/wire"
)

// evilRelay proxies GET and HEAD to good, except rollout.json (whatever
// gates holds, the legit file when nil) and /-/relays (itself only, in
// the group it claims). It takes no POST: no outcome or report of its
// children reaches the real tree.
type evilRelay struct {
	URL, claim string
	srv        *http.Server
	proxy      *httputil.ReverseProxy // to the good relay, flushing at once (the event stream)

	mu    sync.Mutex
	gates []byte
	gets  int // rollout.json requests answered with gates
}

func startEvilRelay(t *testing.T, good, claim string) *evilRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	e := &evilRelay{URL: "http://" + ln.Addr().String(), claim: claim, proxy: &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = target.Host },
		Transport:     &http.Transport{Proxy: nil, DisableCompression: true},
		FlushInterval: -1,
	}}
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	t.Cleanup(func() { _ = e.srv.Close() })
	return e
}

// serveGates makes the relay answer rollout.json with b (nil: pass the
// legit one on).
func (e *evilRelay) serveGates(b []byte) {
	e.mu.Lock()
	e.gates = b
	e.mu.Unlock()
}

// lies is how many times it answered rollout.json with its own gates.
func (e *evilRelay) lies() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gets
}

func (e *evilRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"not here","code":"not_found"}`)
		return
	case r.URL.Path == wire.RelaysPath:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"group":"`+e.claim+`","relays":[{"name":"evil","url":"`+e.URL+`"}]}`)
		return
	case r.URL.Path == wire.TUFPath(wire.GatesName):
		e.mu.Lock()
		b := e.gates
		if b != nil {
			e.gets++
		}
		e.mu.Unlock()
		if b != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(b)
			return
		}
	}
	e.proxy.ServeHTTP(w, r)
}

// forgeGates rewrites a legit rollout.json so that every ring is open at
// the newest generation, the halt lifted, its version one higher. With
// key nil it keeps the rollout role's signatures (no longer valid for
// the content); otherwise it signs with key, which the root does not know.
func forgeGates(t *testing.T, legit []byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	md, err := metadata.Targets().FromBytes(legit)
	if err != nil {
		t.Fatalf("the legit rollout.json does not parse as targets metadata: %v", err)
	}
	raw, err := json.Marshal(md.Signed.UnrecognizedFields[wire.GatesField])
	if err != nil {
		t.Fatal(err)
	}
	var g wire.Gates
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("%s in the legit rollout.json: %v", wire.GatesField, err)
	}
	g.Halted, g.Reason = false, ""
	for i := range g.Rings {
		g.Rings[i].Open = g.Newest
	}
	var asMap map[string]any
	raw, _ = json.Marshal(g)
	if err := json.Unmarshal(raw, &asMap); err != nil {
		t.Fatal(err)
	}
	md.Signed.UnrecognizedFields[wire.GatesField] = asMap
	md.Signed.Version++
	if key != nil {
		signer, err := signature.LoadSigner(key, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		md.ClearSignatures()
		if _, err := md.Sign(signer); err != nil {
			t.Fatal(err)
		}
	}
	out, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// foreignKey is an ed25519 key no root of the test lists.
func foreignKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// checkLyingRelay: while the rollout is halted (canary at generation 3,
// early and broad at 2), a relay that lists itself in the canary's group
// passes the legit tree on but serves forged gates (every ring opened at
// 3: the rollout role's signatures over other content, then a key the
// root does not know), then an older legit rollout.json. A branch-c
// relay below it refuses each (relayd_rollout_gates_refused_total) and
// keeps serving the legit gates; its agent stays on generation 2; an
// agent syncing from the lying relay itself installs its own ring's
// generation (2), never 3, whatever the relay claims; one without a
// group is in the last ring.
func checkLyingRelay(t *testing.T, rt *rollTree) {
	c := newClient()
	legit, _, err := gatesAt(c, rt.origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.seen) == 0 || bytes.Equal(rt.seen[0], legit) {
		t.Fatal("no older rollout.json seen to replay")
	}
	evil := startEvilRelay(t, rt.hq[0].URL, "branch-a")
	child := rt.startRelay(t, "evil-child-1", "branch-c", "proxy", "", "--upstream", evil.URL, "--root", rt.root,
		"--tree-key-file", rt.treeKey, "--mirror-interval", "1s", "--cache-max", "1GiB")
	eventually(t, 60*time.Second, "the relay below the lying one to serve the legit gates", func() error {
		b, _, err := gatesAt(c, child.URL)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, legit) {
			return fmt.Errorf("%d bytes, not the origin's", len(b))
		}
		return nil
	})
	// Checked at the end: its ring's generation (2, older than the newest)
	// takes the pinned path, which TestRollout/JoiningRelay checks alone.
	below := rt.newAgent(t, "evil-child-agent", "branch-c", child.URL, newAgentDir(t))

	direct := newAgentDir(t)
	syncDirect := func(group, dir string) (string, error) {
		out, stderr, err := runRelayd(t, 60*time.Second, append([]string{"agent", "sync", "--quiet"},
			rt.agentArgs("evil-direct", group, evil.URL, dir)...)...)
		return out + stderr, err
	}
	if out, err := syncDirect("branch-c", direct); err != nil || installedIn(direct) != 2 || holdsGen(direct, 2) != nil {
		t.Errorf("a branch-c agent syncing from a relay claiming branch-a: %v, installed %d, want generation 2 (ring broad)\n%s",
			err, installedIn(direct), out)
	}
	noGroup := newAgentDir(t)
	if out, err := syncDirect("", noGroup); err != nil || installedIn(noGroup) != 2 {
		t.Errorf("an agent without a group: %v, installed %d, want generation 2 (the last ring)\n%s", err, installedIn(noGroup), out)
	}

	attacks := []struct {
		name, reason string
		gates        []byte
	}{
		{"content changed under the rollout role's signatures", "forged", forgeGates(t, legit, nil)},
		{"signed by a key the root does not list", "forged", forgeGates(t, legit, foreignKey(t))},
		{"an older legit rollout.json", "replayed", rt.seen[0]},
	}
	series := func(reason string) string { return `relayd_rollout_gates_refused_total{reason="` + reason + `"}` }
	for _, at := range attacks {
		refused, _ := metric(get(t, c, http.MethodGet, child.admin+"/metrics").body, series(at.reason))
		evil.serveGates(at.gates)
		lies := evil.lies()
		eventually(t, 30*time.Second, "the relay below to refuse "+at.name, func() error {
			if v, _ := metric(get(t, c, http.MethodGet, child.admin+"/metrics").body, series(at.reason)); v <= refused {
				return fmt.Errorf("%s = %v", series(at.reason), v)
			}
			return nil
		})
		if b, _, err := gatesAt(c, child.URL); err != nil || !bytes.Equal(b, legit) {
			t.Errorf("%s: the relay below serves %d other bytes (%v), want the legit gates", at.name, len(b), err)
		}
		out, err := syncDirect("branch-c", direct)
		if g := installedIn(direct); g > 2 || holdsGen(direct, 3) == nil {
			t.Errorf("%s: the agent installed generation %d from the lying relay", at.name, g)
		}
		if evil.lies() == lies {
			t.Errorf("%s: the agent's sync never asked for rollout.json", at.name)
		}
		t.Logf("%s: agent sync from the lying relay: %v\n%s", at.name, err, out)
	}
	waitInstalled(t, []*rollAgent{below}, 2, 30*time.Second)
	stayOn(t, []*rollAgent{below}, 2, time.Second, "the agent below the lying relay on generation 2")
}
