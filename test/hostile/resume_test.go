package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/internal/resumetest"
)

// Row 2 of issue 11: a plain proxy (no --root) with two parents; parent
// A cuts a 30 MB object at 10 MB, parent B holds another version (another
// ETag, or another total length too) and ignores If-Range. At 8d8f9f8 the
// resume took any 206 starting at the right offset: A's first 10 MB + B's
// rest was served with 200 and cached as a HIT. Now no answer carries a
// byte of the other version, none of the spliced object completes with a
// success status, nothing spliced is cached, and the refusal is counted.
//
// B is asked second for sure: as the proxy's fallback (evilrelay's
// mismatched 206), or as its second upstream when it answers whole GETs
// 503 (an in-test server, resumetest.Server, since which of two upstreams
// is asked first is random).
func TestResumeNeverSplicesAnotherVersion(t *testing.T) {
	t.Parallel()
	const (
		p    = "software/tool/2.0/big.bin"
		size = 30_000_000
		cut  = 10_000_000
	)
	data := randomBytes(21, size)
	tr := publishTree(t, map[string][]byte{p: data})
	for _, tc := range []struct {
		name string
		// parents returns the proxy's --upstream and --fallback values
		// and a check that B was asked to resume.
		parents func(t *testing.T, a *proctest.Proc, dir string) (upstream, fallback string, resumed func() bool)
	}{
		{"fallback holds another version", evilParent("other")},
		{"fallback holds another version of another length", evilParent("other-length")},
		{"second upstream holds another version", func(t *testing.T, a *proctest.Proc, _ string) (string, string, func() bool) {
			other := make([]byte, len(data))
			for i, c := range data {
				other[i] = c ^ 0x5a
			}
			b := resumetest.NewServer(t, int64(len(other)), resumetest.Mismatched("", other)["another etag"])
			return a.URL + "," + b.URL, "", func() bool { return b.Ranged() > 0 }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startEvil(t, tr.Dir, "/"+p+"=cut:"+strconv.Itoa(cut))
			upstream, fallback, resumed := tc.parents(t, a, tr.Dir)
			args := []string{"--mode", "proxy", "--upstream", upstream, "--data-dir", t.TempDir(), "--cache-max", "256MiB",
				"--admin", "127.0.0.1:0"}
			if fallback != "" {
				args = append(args, "--fallback", fallback)
			}
			relay := startRelayd(t, args...)
			admin := "http://" + relay.WaitLogAddr(t, "admin listening")

			got := do(http.MethodGet, relay.URL+"/"+p, size+1<<20)
			if !bytes.HasPrefix(data, got.Body) {
				t.Fatalf("status %d, %d bytes (err %v) that are not a prefix of the object: bytes of another version were spliced in",
					got.Status, len(got.Body), got.Err)
			}
			if got.Err == nil && got.Status < 300 && len(got.Body) != size {
				t.Fatalf("status %d with a short body (%d bytes) read without error", got.Status, len(got.Body))
			}
			if !resumed() {
				t.Fatal("B was never asked to resume: the test did not attack what it means to")
			}

			// Nothing spliced is cached: once A behaves, the object is a
			// fill of the right bytes, never a HIT of spliced ones.
			setEvil(t, a, "*=ok")
			proctest.Eventually(t, 30*time.Second, "the whole object from the proxy", func() error {
				again := do(http.MethodGet, relay.URL+"/"+p, size+1<<20)
				if again.Status == http.StatusOK && again.Err == nil && !bytes.Equal(again.Body, data) {
					return proctest.StopErr{Err: fmt.Errorf("200 (%s) with %d bytes that are not the object", again.Header.Get("X-Relay-Cache"), len(again.Body))}
				}
				if again.Err != nil || again.Status != http.StatusOK {
					return fmt.Errorf("status %d, %v", again.Status, again.Err)
				}
				return nil
			})
			if n := adminCounter(t, admin, "relayd_upstream_resume_refused_total"); n < 1 {
				t.Errorf("relayd_upstream_resume_refused_total = %v, want at least 1", n)
			}
			if n := strings.Count(relay.Log(), "resume refused"); n < 1 {
				t.Error("no log line about the refused resume")
			}
		})
	}
}

// evilParent is B as an evilrelay serving the same tree with behaviour
// (a mismatched 206 that ignores If-Range), the proxy's fallback.
func evilParent(behaviour string) func(t *testing.T, a *proctest.Proc, dir string) (string, string, func() bool) {
	return func(t *testing.T, a *proctest.Proc, dir string) (string, string, func() bool) {
		b := startEvil(t, dir, "*="+behaviour)
		return a.URL, b.URL, func() bool {
			for _, m := range proctest.LogLines(b.Log()) {
				if m["message"] == "request" && m["range"] != "" && m["range"] != nil {
					return true
				}
			}
			return false
		}
	}
}

// adminCounter reads one unlabelled series from an admin port's /metrics.
func adminCounter(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := plainClient.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
