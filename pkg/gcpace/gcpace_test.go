package gcpace

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		name string
		live uint64
		want int
	}{
		{"nothing collected yet", 0, 400},
		{"a small relay", 8 << 20, 400},
		{"the 10 MiB heap GOGC=400 was chosen for", 10 << 20, 400},
		{"20 MiB: headroom stays 40 MiB", 20 << 20, 200},
		{"40 MiB", 40 << 20, 100},
		{"50,000 streams: never below 100", 80 << 20, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Percent(tc.live); got != tc.want {
				t.Errorf("Percent(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
			}
		})
	}
}

func TestPercentUnderAMemoryLimit(t *testing.T) {
	c := DefaultConfig()
	c.MemoryLimit = 256 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{{0, off}, {10 << 20, off}, {128 << 20, off}, {129 << 20, 100}} {
		if got := c.Percent(tc.live); got != tc.want {
			t.Errorf("limit 256 MiB: Percent(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
	if !c.changed(off, 100) || !c.changed(100, off) || c.changed(off, off) {
		t.Error("turning the percentage off or on must count as a change")
	}
}

func TestChanged(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		cur, p int
		want   bool
	}{
		{400, 390, false}, {400, 350, true}, {200, 210, false}, {200, 230, true}, {105, 100, true}, {395, 400, true}, {100, 100, false},
	} {
		if got := c.changed(tc.cur, tc.p); got != tc.want {
			t.Errorf("changed(%d, %d) = %v, want %v", tc.cur, tc.p, got, tc.want)
		}
	}
}

// gogc reads the collector's current GOGC.
func gogc(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Skip("no /gc/gogc:percent in this runtime")
	}
	return int(s[0].Value.Uint64())
}

// Run sets MaxPercent, then lowers GOGC to what the live heap calls for,
// and leaves it when ctx ends. Not parallel: it sets the process's GOGC.
func TestRunFollowsTheLiveHeap(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set: Run leaves it")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	// Any live heap is more than 1 KiB: the floor.
	c := Config{MaxPercent: 400, MinPercent: 150, MaxHeadroom: 1 << 10, Interval: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, c) }()
	deadline := time.Now().Add(10 * time.Second)
	for gogc(t) != 150 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d after 10s, want 150", gogc(t))
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// With a memory limit, Run sets it and turns the percentage off for a
// small heap. Not parallel: it sets the process's collector.
func TestRunSetsTheMemoryLimit(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		if _, set := os.LookupEnv(env); set {
			t.Skip(env + " is set")
		}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	c := DefaultConfig()
	c.MemoryLimit, c.Interval = 1<<40, 5*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, c) }()
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) != 1<<40 || gogc(t) != off {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d, GOGC %d after 10s; want 1 TiB and off", debug.SetMemoryLimit(-1), gogc(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
