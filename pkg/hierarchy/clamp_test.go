package hierarchy

import (
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// A report sent in the future of the receiver's clock is taken as sent
// when it arrived: ages stay true.
func TestPutClampsSent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tr := NewTree(time.Minute, clock.NewFake(now))
	far := time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
	r := wire.Report{Group: "g", Node: "n", Sent: far, Children: []wire.Report{{Group: "h", Node: "m", Sent: far}}}
	if err := tr.Put(r); err != nil {
		t.Fatal(err)
	}
	got := tr.Children()[0]
	if !got.Sent.Equal(now) || !got.Children[0].Sent.Equal(now) {
		t.Fatalf("sent %v / %v, want %v", got.Sent, got.Children[0].Sent, now)
	}
	v := View("top", 1, nil, tr.Children(), now, AgesFor(time.Minute))
	if a := v.Children[0].Members[0].Age; a != "0s" {
		t.Fatalf("age %q", a)
	}
	// A little ahead (clocks differ) is kept.
	tr.Put(wire.Report{Group: "g", Node: "n", Sent: now.Add(30 * time.Second)})
	if got := tr.Children()[0].Sent; !got.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("sent %v", got)
	}
}
