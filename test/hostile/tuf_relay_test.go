package hostile

// The TUF attacks against a relay: a mirror whose parent serves a
// rolled-back, an expired or a forged generation keeps serving its live
// generation (metadata and objects) and never goes live with what it was
// served; the genuine next generation then goes live.

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/proctest"
)

// A mirror relay below evilrelay goes live with generation 2; generation
// 3 is then served rolled back (generation 1's timestamp), expired (its
// timestamp re-signed with a past expiry) and forged (rest signed by an
// attacker's key, listing other bytes): after each, twice asked, the
// mirror still serves generation 2's timestamp and object and logged why.
// The genuine generation 3 then goes live.
func TestTUFMirrorKeepsItsLiveGeneration(t *testing.T) {
	t.Parallel()
	a := &attack{path: "software/app.bin", v1: randomBytes(301, 3000), v2: randomBytes(302, 3100)}
	a.tr = publishTree(t, map[string][]byte{a.path: a.v1})
	a.gen1 = a.tr.snapshot(t)
	a.tr.write(t, a.path, a.v2)
	a.tr.publish(t)
	a.keys = map[string]*signer{"timestamp": roleKey(t, a.tr.Keys, "timestamp"), "snapshot": roleKey(t, a.tr.Keys, "snapshot")}
	evil := startEvil(t, a.tr.Dir)
	relay := startRelayd(t, "--mode", "mirror", "--upstream", evil.URL, "--data-dir", t.TempDir(), "--root", a.tr.Root, "--mirror-interval", "1s")
	live := a.tr.meta(t, "timestamp.json")
	serving := func(ts, object []byte) error {
		if got := do(http.MethodGet, relay.URL+metaPath, 1<<20); got.Status != http.StatusOK || !bytes.Equal(got.Body, ts) {
			return fmt.Errorf("the relay serves timestamp.json: status %d, %d bytes, not the live one", got.Status, len(got.Body))
		}
		if got := do(http.MethodGet, relay.URL+"/"+a.path, 1<<20); got.Status != http.StatusOK || !bytes.Equal(got.Body, object) {
			return fmt.Errorf("the relay serves %s: status %d, %d bytes sha256 %.12s, want %.12s", a.path, got.Status, len(got.Body), sum(got.Body), sum(object))
		}
		return nil
	}
	proctest.Eventually(t, 30*time.Second, "the mirror to go live with generation 2", func() error { return serving(live, a.v2) })

	// Generation 3, genuine, published: each attack serves it altered.
	v3 := randomBytes(303, 3200)
	a.tr.write(t, a.path, v3)
	a.tr.publish(t)
	genuine := a.tr.snapshot(t)
	rest := a.tr.latest(t, "rest")
	attacks := []struct {
		name, file, log string
		do              func()
	}{
		{"rolled back", "timestamp.json", "the parents asked are behind the trusted metadata", func() { a.tr.serve(t, "timestamp.json", a.gen1["timestamp.json"]) }},
		{"expired", "timestamp.json", "expired since", func() {
			a.forgeTimestamp(t, func(md *metadata.Metadata[metadata.TimestampType]) {
				md.Signed.Expires = time.Now().Add(-time.Hour).UTC()
			})
		}},
		{"forged", rest, "not enough signatures", func() {
			a.tr.serve(t, rest, forge(t, genuine[rest], func(md *metadata.Metadata[metadata.TargetsType]) {
				md.Signed.Targets[a.path] = targetFile(t, a.path, randomBytes(666, 3200))
			}, attackerKey(t)))
		}},
	}
	for _, at := range attacks {
		a.tr.serve(t, "timestamp.json", genuine["timestamp.json"])
		a.tr.serve(t, rest, genuine[rest])
		logged := strings.Count(relay.Log(), at.log)
		at.do()
		before := proctest.CountRequests(evil.Log(), http.MethodGet, "/-/tuf/"+at.file)
		proctest.Eventually(t, 30*time.Second, "the mirror to refuse the "+at.name+" generation", func() error {
			if n := proctest.CountRequests(evil.Log(), http.MethodGet, "/-/tuf/"+at.file) - before; n < 2 {
				return fmt.Errorf("%d GETs of %s", n, at.file)
			}
			if strings.Count(relay.Log(), at.log) <= logged {
				return fmt.Errorf("no %q in its log", at.log)
			}
			return nil
		})
		if err := serving(live, a.v2); err != nil {
			t.Errorf("after a %s generation: %v", at.name, err)
		}
	}
	// The genuine generation 3 goes live.
	a.tr.serve(t, "timestamp.json", genuine["timestamp.json"])
	a.tr.serve(t, rest, genuine[rest])
	proctest.Eventually(t, 30*time.Second, "the mirror to go live with generation 3", func() error { return serving(genuine["timestamp.json"], v3) })
}
