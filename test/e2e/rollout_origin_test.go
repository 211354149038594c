package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// TestRolloutOrigin: a real origin with a rollout plan and the online
// rollout key. Publishing opens ring 0 in the signed rollout.json (verified
// with the tree's root); `relayd rollout` promotes, halts, is refused while
// halted, resumes; a relay shows the rollout read-only and refuses the
// actions (409 not_origin).
func TestRolloutOrigin(t *testing.T) {
	t.Parallel()
	c := newClient()
	tree, keys, root := publishedTree(t, map[string][]byte{"security/a.patch": makeData(1501, 3000)})
	// The rollout role, added to the root (a new root version).
	for _, args := range [][]string{
		{"keygen", "--role", wire.RolloutRole, "--out", keys},
		{"tuf", "rotate", tree, "--role", wire.RolloutRole, "--add-key", filepath.Join(keys, "rollout.pub"), "--keys", keys},
		{"publish", "--timestamp-only", tree, "--keys", keys},
	} {
		if out, stderr, err := runRelayd(t, 60*time.Second, args...); err != nil {
			t.Fatalf("relayd %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
	}
	plan := filepath.Join(t.TempDir(), "rollout.yaml")
	if err := os.WriteFile(plan, []byte(`name: fleet
rings:
  - {name: canary, groups: [branch-a], soak: 1h}
  - {name: early, groups: [branch-b], soak: 1h}
  - {name: broad, groups: ["*"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	origin := startRelayd(t, "--mode", "origin", "--root", tree, "--data-dir", t.TempDir(), "--admin", "127.0.0.1:0",
		"--rollout-plan", plan, "--rollout-key", filepath.Join(keys, "rollout.key"))
	originAdmin := "http://" + origin.WaitLogAddr(t, "admin listening")

	// The gates, verified as an agent would: the root with the rollout role.
	trusted := readFile(t, filepath.Join(tree, "-", "tuf", "2.root.json"))
	tc, err := tufclient.New(trusted, tufclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantGates := func(want string, halted bool) {
		t.Helper()
		eventually(t, 20*time.Second, "rollout.json with rings open at "+want, func() error {
			r, err := tryGet(c, http.MethodGet, origin.URL+wire.TUFPath(wire.GatesName))
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return fmt.Errorf("status %d", r.status)
			}
			g, _, err := tc.VerifyGates(r.body)
			if err != nil {
				return err
			}
			var opens []string
			for _, ring := range g.Rings {
				opens = append(opens, fmt.Sprint(ring.Open.Version))
			}
			if got := strings.Join(opens, " "); got != want || g.Halted != halted {
				return fmt.Errorf("rings open at %s, halted %v", got, g.Halted)
			}
			return nil
		})
	}
	wantGates("1 1 1", false) // published before the plan: adopted everywhere

	writeFiles(t, tree, map[string][]byte{"security/b.patch": makeData(1502, 3000)})
	publish(t, tree, keys)
	wantGates("2 1 1", false)

	rollout := func(wantErr string, args ...string) string {
		t.Helper()
		out, stderr, err := runRelayd(t, 30*time.Second, append([]string{"rollout"}, args...)...)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("relayd rollout %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		case wantErr != "" && (err == nil || !strings.Contains(stderr, wantErr)):
			t.Fatalf("relayd rollout %s: %v, stderr %q; want it refused with %q", strings.Join(args, " "), err, stderr, wantErr)
		}
		return out
	}
	if out := rollout("", "status", "--admin", originAdmin); !strings.Contains(out, "plan fleet, newest generation 2") || !strings.Contains(out, "canary") {
		t.Fatalf("status:\n%s", out)
	}
	rollout("", "promote", "--admin", originAdmin)
	wantGates("2 2 1", false)
	rollout("", "halt", "--reason", "driver crash", "--admin", originAdmin)
	wantGates("2 2 1", true)
	if out := rollout("", "status", "--admin", originAdmin); !strings.Contains(out, "HALTED: driver crash") {
		t.Fatalf("status of a halted rollout:\n%s", out)
	}
	rollout("resume it first", "promote", "broad", "--admin", originAdmin)
	// The API says the same, with its status and code.
	resp, err := c.Post(originAdmin+"/v1/rollout/promote", "application/json", strings.NewReader(`{"ring":"broad"}`))
	if err != nil {
		t.Fatal(err)
	}
	wantJSONError(t, readResponse(t, resp), http.StatusConflict, "halted", "promote while halted")
	rollout("", "resume", "--admin", originAdmin)
	rollout("no such ring", "promote", "nope", "--admin", originAdmin)
	rollout("", "promote", "broad", "--admin", originAdmin)
	wantGates("2 2 2", false)
	var st struct {
		Plan  string `json:"plan"`
		Rings []struct {
			Name string `json:"name"`
			Open uint64 `json:"open"`
		} `json:"rings"`
		Signed struct{ Version int64 } `json:"signed"`
	}
	if err := json.Unmarshal([]byte(rollout("", "status", "--json", "--admin", originAdmin)), &st); err != nil || st.Plan != "fleet" || len(st.Rings) != 3 || st.Rings[2].Open != 2 || st.Signed.Version < 5 {
		t.Fatalf("status --json: %+v %v", st, err)
	}

	// A relay: read-only.
	relay := startRelayd(t, "--mode", "mirror", "--node", "hq-1", "--group", "hq", "--upstream", origin.URL, "--root", root,
		"--data-dir", t.TempDir(), "--admin", "127.0.0.1:0")
	relayAdmin := "http://" + relay.WaitLogAddr(t, "admin listening")
	rollout("only the origin", "promote", "--admin", relayAdmin)
	rollout("only the origin", "halt", "--reason", "x", "--admin", relayAdmin)
	if out := rollout("", "status", "--admin", relayAdmin); out == "" {
		t.Fatal("a relay's rollout status printed nothing")
	}
}

// readResponse reads resp into a response.
func readResponse(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
