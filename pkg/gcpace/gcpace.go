package gcpace

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config bounds the pacing.
type Config struct {
	// MaxPercent is the GOGC of a small heap (default 400).
	MaxPercent int
	// MinPercent is the least GOGC set however large the heap (default
	// 100, Go's default: less would collect more often than any Go
	// program does by default).
	MinPercent int
	// MaxHeadroom is the most bytes the collector leaves to garbage
	// while GOGC is above MinPercent (default 40 MiB).
	MaxHeadroom uint64
	// Interval is how often the live heap is read (default 1 s). The
	// live heap changes at each collection only.
	Interval time.Duration
	// MemoryLimit, when set, is the process's soft memory limit
	// (debug.SetMemoryLimit, as GOMEMLIMIT): while the live heap is at
	// most half of it the collector is off (GOGC=off) and runs only as
	// the process nears the limit, which collects a small heap far less
	// often than any percentage; beyond half, GOGC is paced as without a
	// limit (the limit still a ceiling), so that a heap grown near the
	// limit is not collected back to back. 0: no limit.
	MemoryLimit uint64
}

// off is the GOGC that turns the collector's percentage off.
const off = -1

// DefaultConfig is what a relay runs with.
func DefaultConfig() Config {
	return Config{MaxPercent: 400, MinPercent: 100, MaxHeadroom: 40 << 20, Interval: time.Second}
}

// Percent is the GOGC for a live heap of live bytes: off while live is
// at most half of MemoryLimit; else MaxHeadroom as a percentage of live,
// within MinPercent and MaxPercent.
func (c Config) Percent(live uint64) int {
	if c.MemoryLimit > 0 && live <= c.MemoryLimit/2 {
		return off
	}
	if live == 0 {
		return c.MaxPercent
	}
	p := c.MaxHeadroom * 100 / live
	return int(min(max(p, uint64(c.MinPercent)), uint64(c.MaxPercent)))
}

// liveHeap is the runtime metric Run follows: heap bytes found live by
// the last collection.
const liveHeap = "/gc/heap/live:bytes"

// Run sets the memory limit, sets GOGC for an empty heap and then
// follows the live heap until ctx ends, when it returns. It does nothing
// when GOGC is set in the environment, and sets no limit when GOMEMLIMIT
// is.
func Run(ctx context.Context, c Config) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set || c.MemoryLimit > math.MaxInt64 {
		c.MemoryLimit = 0
	}
	if c.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(c.MemoryLimit))
	}
	cur := c.Percent(0)
	debug.SetGCPercent(cur)
	sample := []metrics.Sample{{Name: liveHeap}}
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not this runtime's metric: leave GOGC as it is
		}
		if p := c.Percent(sample[0].Value.Uint64()); c.changed(cur, p) {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}

// changed reports whether p differs from cur by more than a tenth, or
// reaches either end: GOGC is not reset for every little change.
func (c Config) changed(cur, p int) bool {
	if p == cur || (cur == off) != (p == off) {
		return p != cur
	}
	d := p - cur
	return d*10 > cur || -d*10 > cur || (p != cur && (p == c.MinPercent || p == c.MaxPercent))
}
