package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relayd/relayd/pkg/admin"
)

// relayd status shows the window in force, what waits for it, and the
// WAN bytes on the wire against those of content.
func TestStatusShowsWindowAndWAN(t *testing.T) {
	t.Parallel()
	s := admin.Status{Node: "b-1", Window: &admin.UpstreamWindow{Schedule: "Mon-Fri 08:00-18:00=0, *=50MB/s", Rule: "Mon-Fri 08:00-18:00=0",
		Limited: true, Held: true, Until: time.Date(2026, 12, 7, 18, 0, 0, 0, time.Local),
		Waiting: []admin.ClassWaiting{{Class: "foreground"}, {Class: "background", Requests: 3, Bytes: 5e6}, {Class: "urgent"}}},
		WAN: &admin.UpstreamTraffic{WireBytes: 1e6, ContentBytes: 4e6, WireRatio: 0.25,
			Kinds: []admin.KindTraffic{{Kind: "security", WireBytes: 1e6, ContentBytes: 4e6}, {Kind: "software"}}}}
	var out bytes.Buffer
	if err := printStatus(&out, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"window", "Mon-Fri 08:00-18:00=0: background traffic HELD until Mon 18:00:00; waiting: 3 background (5 MB to read)",
		"WAN", "1 MB on the wire for 4 MB of content (wire/content 0.25); wire/content by kind: security 1 MB/4 MB",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("relayd status lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "software") {
		t.Errorf("a kind with no traffic is shown:\n%s", out.String())
	}
	open := admin.UpstreamWindow{Schedule: "x", Rule: "*=50MB/s", Limited: true, RateBytesPerSec: 50e6}
	if got := windowLine(open); got != "*=50MB/s: background at 50 MB/s" {
		t.Errorf("open window: %q", got)
	}
}
