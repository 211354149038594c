package tufrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
)

func TestCanonicalTargetsMatchesCJSON(t *testing.T) {
	paths := []string{"a", "software/linux-amd64/1.2.3/x.tar.gz", `q"uote`, `back\slash`, "html<&>", "ünï/cödé", "sp ace", "\u2028line", "tab\tand\x01ctl"}
	m := metadata.Targets(time.Date(2027, 3, 7, 20, 54, 19, 0, time.UTC))
	m.Signed.Version = 42
	for i, p := range paths {
		kind, plat, ver := catalog.Classify(p)
		if i%2 == 0 {
			plat, ver = `pl"at`, "v<1>"
		}
		tf, err := catalog.TargetFile(catalog.Object{Path: p, Size: int64(i * 1000), Digest: digest.Digest(sha256.Sum256([]byte(p))), Kind: kind, Platform: plat, Version: ver})
		if err != nil {
			t.Fatal(err)
		}
		m.Signed.Targets[p] = tf
	}
	for _, tc := range []struct {
		name    string
		targets map[string]*metadata.TargetFiles
	}{{"targets", m.Signed.Targets}, {"empty", map[string]*metadata.TargetFiles{}}} {
		m.Signed.Targets = tc.targets
		want, err := cjson.EncodeCanonical(m.Signed)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := canonicalTargets(&m.Signed)
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("%s: canonicalTargets (ok %v)\n%s\nwant (cjson)\n%s", tc.name, ok, got, want)
		}
	}
	// Other shapes are declined.
	m.Signed.Delegations = &metadata.Delegations{}
	if _, ok := canonicalTargets(&m.Signed); ok {
		t.Fatal("a role with delegations was encoded")
	}
	m.Signed.Delegations = nil
	m.Signed.Targets = map[string]*metadata.TargetFiles{"x": {Length: 1, Hashes: metadata.Hashes{"sha256": make([]byte, 32)}}}
	cust := jsonRaw(`{"kind":"other","extra":1}`)
	m.Signed.Targets["x"].Custom = &cust
	if _, ok := canonicalTargets(&m.Signed); ok {
		t.Fatal("custom data relayd does not write was encoded")
	}
}

func jsonRaw(s string) json.RawMessage { return json.RawMessage(s) }
