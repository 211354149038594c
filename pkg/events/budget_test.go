package events

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// eventually polls cond every 10ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJoinLimits(t *testing.T) {
	t.Parallel()
	h := NewHub()
	h.SetLimits(Limits{Total: 5, PerAddr: 2})
	join := func(addr string) (*Sub, error) { return h.Join(Client{ID: "a", Addr: addr}) }
	var subs []*Sub
	for _, addr := range []string{"10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:1", "[2001:db8::1]:1", "[2001:db8::2]:1"} {
		s, err := join(addr)
		if err != nil {
			t.Fatalf("join from %s: %v", addr, err)
		}
		subs = append(subs, s)
	}
	for _, tc := range []struct{ name, addr string }{
		{"third from one IPv4 address", "10.0.0.1:3"},
		{"third from one IPv6 /64", "[2001:db8::3]:1"},
		{"beyond the total", "10.0.0.9:1"},
	} {
		if _, err := join(tc.addr); !errors.Is(err, ErrTooMany) {
			t.Errorf("%s: %v, want ErrTooMany", tc.name, err)
		}
	}
	if got := h.Refused(); got != 3 {
		t.Errorf("Refused() = %d, want 3", got)
	}
	// Closing (twice: the stream writer and the handler may both) frees
	// one place of that address and of the total, no more.
	subs[0].Close()
	subs[0].Close()
	if _, err := join("10.0.0.1:4"); err != nil {
		t.Fatalf("after a close: %v", err)
	}
	if _, err := join("10.0.0.7:1"); !errors.Is(err, ErrTooMany) {
		t.Fatalf("total again full: %v, want ErrTooMany", err)
	}
	// The last tenth is kept for addresses holding less than a quarter of
	// the total.
	big := NewHub()
	big.SetLimits(Limits{Total: 40, PerAddr: 40})
	for i := range 36 { // 90 %: from here the big holders wait
		if _, err := big.Join(Client{Addr: fmt.Sprintf("10.0.0.%d:1", 1+i%2)}); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	if _, err := big.Join(Client{Addr: "10.0.0.1:9"}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("an address holding 18 of 40 past 90 %%: %v, want ErrTooMany", err)
	}
	for i := range 4 {
		if _, err := big.Join(Client{Addr: "10.0.0.3:1"}); err != nil {
			t.Fatalf("a small address, place %d of the last tenth: %v", i, err)
		}
	}
	if _, err := big.Join(Client{Addr: "10.0.0.4:1"}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("beyond the total: %v", err)
	}
	// Subscribe (internal callers) is not limited.
	h.Subscribe(Client{Addr: "10.0.0.1:9"}).Close()
}

func TestAddrKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.2:4000":            "127.0.0.2",
		"[::ffff:10.1.2.3]:80":      "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":         "fe80::/64",
		"garbage":                   "garbage",
	} {
		if got := AddrKey(in); got != want {
			t.Errorf("AddrKey(%q) = %q, want %q", in, got, want)
		}
	}
}
