package outcome

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// BenchmarkSummary: a relay's report-time cost with a full table
// (100,000 agents over 5 generations, 50 failure reasons), and the size
// of the Outcomes it adds to the report (summary_bytes).
func BenchmarkSummary(b *testing.B) {
	tb := New(Config{}, clock.NewFake(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)))
	for i := range DefaultMaxAgents {
		o := wire.Outcome{Agent: fmt.Sprint("agent-", i), Generation: uint64(10 - i%5), State: wire.OutcomeInstalled}
		if i%10 == 0 {
			o.State, o.Reason = wire.OutcomeFailed, fmt.Sprintf("exit %d: could not write file %d", i%7, i%50)
		}
		if err := tb.Put(o, "10.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
	s := tb.Summary(nil)
	body, _ := json.Marshal(s)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tb.Summary(nil)
	}
	b.ReportMetric(float64(len(body)), "summary_bytes")
}
