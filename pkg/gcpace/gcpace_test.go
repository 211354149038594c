package gcpace

import "testing"

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
