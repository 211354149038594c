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
	h.SetLimits(Limits{Total: 6, PerAddr: 2}) // the 6th place is a child relay's
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
		{"an agent in the relay reserve", "10.0.0.9:1"},
	} {
		if _, err := join(tc.addr); !errors.Is(err, ErrTooMany) {
			t.Errorf("%s: %v, want ErrTooMany", tc.name, err)
		}
	}
	if got := h.Refused(); got != 3 {
		t.Errorf("Refused() = %d, want 3", got)
	}
	relay, err := h.Join(Client{ID: "web-1", Group: "branch", Relay: true, Addr: "10.0.0.9:1"})
	if err != nil {
		t.Fatalf("a child relay in its reserve: %v", err)
	}
	if _, err := h.Join(Client{ID: "web-2", Group: "branch", Relay: true, Addr: "10.0.0.8:1"}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a child relay beyond the total: %v, want ErrTooMany", err)
	}
	relay.Close()
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
	// Subscribe (internal callers) is not limited.
	h.Subscribe(Client{Addr: "10.0.0.1:9"}).Close()
}

// TestJoinReserveFlood is the attack of three addresses flooding one
// after the other: the first takes all it may, the second and third only
// a sixteenth of the last tenth each; a late agent and a child relay
// still get a place. (Before, an address holding under a quarter of the
// total could take the whole reserve.)
func TestJoinReserveFlood(t *testing.T) {
	t.Parallel()
	h := NewHub()
	l := Limits{Total: 1000, PerAddr: 1000}
	h.SetLimits(l)
	got := map[string]int{}
	for _, addr := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		for range l.Total {
			if _, err := h.Join(Client{Addr: addr + ":1"}); err != nil {
				if !errors.Is(err, ErrTooMany) {
					t.Fatal(err)
				}
				break
			}
			got[addr]++
		}
	}
	relays := l.RelayReserve()
	reserve := (l.Total - relays) / 10
	if relays != 15 || got["127.0.0.2"] != l.Total-relays-reserve || got["127.0.0.3"] != reserve/16 || got["127.0.0.4"] != reserve/16 {
		t.Fatalf("flood took %v (relay reserve %d, reserve %d), want %d, %d, %d", got, relays, reserve, l.Total-relays-reserve, reserve/16, reserve/16)
	}
	if _, err := h.Join(Client{Addr: "127.0.0.1:5"}); err != nil {
		t.Fatalf("a late agent from another address: %v", err)
	}
	for i := range relays {
		if _, err := h.Join(Client{ID: fmt.Sprint("web-", i), Group: "branch", Relay: true, Addr: "127.0.0.2:9"}); err != nil {
			t.Fatalf("child relay %d, its address flooding: %v", i, err)
		}
	}
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
