package e2e

// Compression at the two ends of the tree (issue 16): the origin sends
// zstd (and a dcz delta against the version it sent before) to the top
// group, and an agent asks its relay for zstd (and dcz against the file it
// wrote), decodes and verifies before committing.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pathBytes sums the body bytes of the GETs of path in an access log (all
// clients).
func pathBytes(logText, path string) (gets int, n int64) {
	for _, m := range logLines(logText) {
		if m["message"] == "request" && m["method"] == http.MethodGet && m["path"] == path {
			gets++
			if b, ok := m["bytes"].(float64); ok {
				n += int64(b)
			}
		}
	}
	return gets, n
}

// ruleText is n bytes of a text rule set.
func ruleText(n, seed int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "alert tcp any any -> 10.%d.%d.0/24 %d (msg:\"rule %d\"; sid:%d;)\n", seed, i%256, i%1024, i, 100000+i)
	}
	return b.Bytes()[:n]
}

func TestEncEdge(t *testing.T) {
	t.Parallel()
	c := newClient()
	const path = "security/2026/rules.txt"
	v1 := ruleText(2<<20, 1)
	v2 := bytes.Clone(v1)
	copy(v2[len(v2)/2:], "alert tcp any any -> any 443 (msg:\"a new rule\"; sid:1;)\n")
	tree, keys, root := publishedTree(t, map[string][]byte{path: v1})
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--node", "origin", "--data-dir", t.TempDir())
	relay := startTreeRelay(t, "hq-1", "hq", "mirror", "", "--upstream", origin.URL, "--root", root, "--mirror-interval", "1s")
	waitGen := func(g uint64) {
		eventually(t, 60*time.Second, fmt.Sprintf("hq-1 to hold generation %d", g), func() error {
			if got := catalogGen(c, relay.URL); got != g {
				return fmt.Errorf("generation %d", got)
			}
			return nil
		})
	}
	out := t.TempDir()
	a := libAgent(t, root, []string{relay.URL}, out, nil, nil)
	var marks [2]int64
	check := func(gen uint64, want []byte, max float64) {
		t.Helper()
		waitGen(gen)
		if _, err := a.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(path)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("generation %d: the agent's file is %d bytes (%v), not the published object", gen, len(got), err)
		}
		for i, link := range []struct {
			name string
			p    interface{ Log() string }
		}{{"origin → hq", origin}, {"hq → agent", relay}} {
			eventually(t, 5*time.Second, "the access log of "+link.name, func() error {
				gets, n := pathBytes(link.p.Log(), "/"+path)
				if gets == 0 {
					return fmt.Errorf("no GET of /%s logged", path)
				}
				sent := n - marks[i]
				ratio := float64(sent) / float64(len(want))
				t.Logf("generation %d, %s: %d bytes for a %d-byte object (%.4fx)", gen, link.name, sent, len(want), ratio)
				if sent <= 0 || ratio > max {
					return stopErr{Err: fmt.Errorf("generation %d, %s carried %d bytes (%.4fx) of a %d-byte object, want at most %.2fx", gen, link.name, sent, ratio, len(want), max)}
				}
				marks[i] = n
				return nil
			})
		}
	}
	check(1, v1, 0.15) // zstd on both links (this text: ~0.11x)
	writeFiles(t, tree, map[string][]byte{path: v2})
	publish(t, tree, keys)
	check(2, v2, 0.01) // dcz against generation 1's version on both links
	if st := a.Stats(); st.CodingFallbacks != 0 {
		t.Fatalf("agent stats %+v: no encoded answer should have failed", st)
	}
}
