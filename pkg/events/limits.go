// Limits on subscribers: agents are not authenticated, so the streams
// they can hold open are bounded per address and in total.
package events

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Join is Subscribe within the hub's Limits: beyond them it returns an
// error wrapping ErrTooMany and adds nothing. Streams from the network
// join; nothing is allocated for a refused one but the error.
func (h *Hub) Join(c Client) (*Sub, error) {
	key := AddrKey(c.Addr)
	h.mu.Lock()
	if err := h.limits.refuse(len(h.subs), h.perAddr[key], c.Relay); err != nil {
		h.mu.Unlock()
		h.refused.Add(1)
		return nil, err
	}
	s := h.newSub(c)
	h.add(s)
	h.mu.Unlock()
	return s, nil
}

// refuse says why a stream may not join when open streams are open and
// held of them come from its address (nil: it may). Agents stop short of
// the relay reserve; in the last tenth before it, only an address holding
// fewer than a sixteenth of that tenth may take a place. A verified child
// relay may take any place but beyond PerAddr.
func (l Limits) refuse(open, held int, relay bool) error {
	relays := l.RelayReserve()
	reserve := (l.Total - relays) / 10
	switch {
	case l.Total > 0 && open >= l.Total:
		return fmt.Errorf("%w: %d streams open, the most this relay holds", ErrTooMany, l.Total)
	case l.PerAddr > 0 && held >= l.PerAddr:
		return fmt.Errorf("%w: %d streams open from this address, the most one address may hold", ErrTooMany, l.PerAddr)
	case relay || l.Total <= 0:
		return nil
	case open >= l.Total-relays:
		return fmt.Errorf("%w: the last %d places are kept for child relays", ErrTooMany, relays)
	case open >= l.Total-relays-reserve && held >= max(reserve/16, 1):
		return fmt.Errorf("%w: the last places are kept for addresses holding fewer streams than this one", ErrTooMany)
	}
	return nil
}

// RelayReserve is how many of Total places only verified child relays
// may take: a 64th, at least one (none when Total is under 2), so that
// agents flooding the relay never keep a child relay from its pushes.
func (l Limits) RelayReserve() int {
	if l.Total < 2 {
		return 0
	}
	return max(l.Total/64, 1)
}

// ErrTooMany: Join refused a subscriber beyond the hub's Limits.
var ErrTooMany = errors.New("events: too many streams")

// Limits bound the subscribers a Hub takes through Join: agents are not
// authenticated, so what they can hold open is bounded per address and
// in total. Zero means no limit. The last 64th of Total is kept for
// verified child relays (RelayReserve), and the tenth before it for
// addresses holding fewer than a sixteenth of that tenth: PerAddr is
// generous (a large site behind one NAT address), so a few addresses at
// it could otherwise take every place and leave none to anyone else.
type Limits struct {
	// Total is the most subscribers at once.
	Total int
	// PerAddr is the most subscribers from one address (AddrKey).
	PerAddr int
}

// SetLimits sets the limits later Joins are held to; subscribers already
// in stay.
func (h *Hub) SetLimits(l Limits) {
	h.mu.Lock()
	h.limits = l
	h.mu.Unlock()
}

// AddrLen is how many streams the address key (AddrKey) holds.
func (h *Hub) AddrLen(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.perAddr[key]
}

// Refused is how many Joins the limits refused.
func (h *Hub) Refused() int64 { return h.refused.Load() }

// AddrKey is the address a subscriber is counted under: the IP of a
// "host:port" remote address, and for IPv6 its /64, since one host
// commonly holds a whole /64 (one limit per address would then be no
// limit).
func AddrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}
