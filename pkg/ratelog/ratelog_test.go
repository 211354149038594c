package ratelog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
)

func TestAllow(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	l := New(clk, 10*time.Second)
	type step struct {
		advance time.Duration
		key     string
		ok      bool
		held    int64
	}
	steps := []step{
		{0, "a", true, 0},
		{0, "a", false, 0},
		{time.Second, "a", false, 0},
		{0, "b", true, 0}, // keys are independent
		{8 * time.Second, "a", false, 0},
		{time.Second, "a", true, 3}, // 10s after the first: the three held back are reported
		{0, "a", false, 0},
		{10 * time.Second, "a", true, 1},
		{30 * time.Second, "a", true, 0}, // nothing held back since
		{0, "b", true, 0},                // b was last let through 49s ago
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		ok, held := l.Allow(s.key)
		if ok != s.ok || held != s.held {
			t.Fatalf("step %d (%+v): Allow = %v, %d", i, s, ok, held)
		}
	}
}

func TestDefaultEvery(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	l := New(clk, 0)
	l.Allow("k")
	clk.Advance(DefaultEvery - time.Nanosecond)
	if ok, _ := l.Allow("k"); ok {
		t.Fatal("let through before DefaultEvery")
	}
	clk.Advance(time.Nanosecond)
	if ok, held := l.Allow("k"); !ok || held != 1 {
		t.Fatalf("after DefaultEvery: %v, %d", ok, held)
	}
}

// TestMaxKeys: keys from the network cannot grow the limiter without end;
// past MaxKeys new keys share one, and quiet keys are forgotten.
func TestMaxKeys(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	l := New(clk, time.Second)
	let := 0
	for i := range 3 * MaxKeys {
		if ok, _ := l.Allow(fmt.Sprint("key-", i)); ok {
			let++
		}
	}
	if let != MaxKeys+1 || len(l.keys) != MaxKeys+1 {
		t.Fatalf("%d distinct keys within one interval: %d lines let through, %d keys kept; want %d and %d",
			3*MaxKeys, let, len(l.keys), MaxKeys+1, MaxKeys+1)
	}
	// Once the interval is over the quiet keys are swept and new keys get
	// their own state again.
	clk.Advance(time.Second)
	if ok, _ := l.Allow("fresh"); !ok {
		t.Fatal("a new key after the sweep was held back")
	}
	if len(l.keys) > 3 {
		t.Fatalf("%d keys kept after the sweep", len(l.keys))
	}
}

func TestEvent(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1000, 0))
	l := New(clk, 10*time.Second)
	var buf bytes.Buffer
	log := zerolog.New(&buf).Level(zerolog.InfoLevel)
	for range 5000 {
		l.Event(&log, zerolog.WarnLevel, "garbage").Str("from", "127.0.0.1").Msg("bad packet")
	}
	// Below the level: not logged and not counted.
	l.Event(&log, zerolog.DebugLevel, "garbage").Msg("debug")
	clk.Advance(10 * time.Second)
	l.Event(&log, zerolog.WarnLevel, "garbage").Msg("bad packet")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if _, ok := first[Field]; ok || first["from"] != "127.0.0.1" || first["level"] != "warn" {
		t.Errorf("first line %s", lines[0])
	}
	if second[Field] != float64(4999) {
		t.Errorf("second line %s, want %s: 4999", lines[1], Field)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	l := New(clock.NewFake(time.Unix(1000, 0)), time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	let := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if ok, _ := l.Allow("k"); ok {
					mu.Lock()
					let++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if let != 1 {
		t.Fatalf("%d lines let through by 8 goroutines in one interval, want 1", let)
	}
	clk := l.clk.(*clock.Fake)
	clk.Advance(time.Hour)
	if ok, held := l.Allow("k"); !ok || held != 7999 {
		t.Fatalf("after the interval: %v, %d; want true, 7999", ok, held)
	}
}
