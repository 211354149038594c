package origin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/tuftest"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/tufrepo"
)

// timestampJSON is the unsigned part of a timestamp file as peekTimestamp
// reads it.
func timestampJSON(snapshot uint64, version int64, expires time.Time) []byte {
	return fmt.Appendf(nil, `{"signed":{"_type":"timestamp","spec_version":"1.0.31","version":%d,"expires":%q,`+
		`"meta":{"snapshot.json":{"version":%d}}},"signatures":[]}`, version, expires.UTC().Format(time.RFC3339), snapshot)
}

func TestPeekTimestamp(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	ts, err := peekTimestamp(timestampJSON(4, 9, exp))
	if err != nil || ts.Generation != 4 || ts.Version != 9 || !ts.Expires.Equal(exp) || ts.Digest.IsZero() {
		t.Fatalf("peek: %+v, %v", ts, err)
	}
	for name, b := range map[string]string{
		"not json":    "relayd-catalog-v1 ed25519 xx\n{}",
		"no snapshot": `{"signed":{"_type":"timestamp","version":1,"meta":{}}}`,
		"a snapshot":  `{"signed":{"_type":"snapshot","version":1,"meta":{"snapshot.json":{"version":1}}}}`,
	} {
		if _, err := peekTimestamp([]byte(b)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestWatchTimestamp: the origin announces the timestamp at start, each
// new one (a new generation, or the same one re-signed), and nothing for
// a file that does not parse.
func TestWatchTimestamp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tuf := filepath.Join(dir, "-", "tuf")
	if err := os.MkdirAll(tuf, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) {
		t.Helper()
		tmp := filepath.Join(tuf, "timestamp.json.tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(tuf, "timestamp.json")); err != nil {
			t.Fatal(err)
		}
	}
	exp := time.Now().Add(time.Hour)
	write(timestampJSON(1, 1, exp))
	o, err := New(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Timestamp, 10)
	go o.WatchTimestamp(ctx, 5*time.Millisecond, zerolog.Nop(), func(ts Timestamp) { got <- ts })
	next := func(what string) Timestamp {
		t.Helper()
		select {
		case ts := <-got:
			return ts
		case <-time.After(10 * time.Second):
			t.Fatalf("no announcement of %s", what)
		}
		return Timestamp{}
	}
	if ts := next("the timestamp at start"); ts.Generation != 1 || ts.Version != 1 {
		t.Fatalf("at start: %+v", ts)
	}
	write([]byte("not a timestamp, longer than the last one to change the size"))
	write(timestampJSON(1, 2, exp.Add(time.Hour))) // re-signed: same generation
	if ts := next("the re-signed timestamp"); ts.Generation != 1 || ts.Version != 2 {
		t.Fatalf("re-signed: %+v", ts)
	}
	write(timestampJSON(2, 3, exp.Add(time.Hour)))
	if ts := next("the new generation"); ts.Generation != 2 || ts.Version != 3 {
		t.Fatalf("new generation: %+v", ts)
	}
}

// TestResigner: the origin re-signs the timestamp with its online key
// once less than half of the expiry is left, on its clock, and not
// before; the re-signed one names the same generation.
func TestResigner(t *testing.T) {
	t.Parallel()
	tree, keys := t.TempDir(), filepath.Join(t.TempDir(), "keys")
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	roles, all := tuftest.Keys(t, keys)
	opt := tufrepo.Options{Workers: 1, Now: func() time.Time { return start }}
	opt.Expiry.Timestamp = 10 * time.Minute
	if _, err := tufrepo.Init(tree, all, roles, opt); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tufrepo.Publish(context.Background(), tree, all, opt); err != nil {
		t.Fatal(err)
	}
	o, err := New(tree, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	tsKey, err := tufrepo.LoadKeyRing([]string{filepath.Join(keys, "timestamp.key")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(start.Add(4 * time.Minute))
	r := &Resigner{Tree: tree, Key: tsKey, Expiry: 10 * time.Minute, Clock: clk, Log: zerolog.Nop()}
	before, err := o.ReadTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(o); err != nil {
		t.Fatal(err)
	}
	if ts, _ := o.ReadTimestamp(); ts.Version != before.Version {
		t.Fatalf("re-signed with 6 of 10 minutes left: version %d, want %d", ts.Version, before.Version)
	}
	clk.Advance(2 * time.Minute) // 4 minutes left
	if err := r.Check(o); err != nil {
		t.Fatal(err)
	}
	ts, err := o.ReadTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	if ts.Version != before.Version+1 || ts.Generation != before.Generation || !ts.Expires.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("after the re-sign: %+v (before %+v), want the next version of the same generation, expiring 10 minutes on", ts, before)
	}
}
