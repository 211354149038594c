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
	l := h.limits
	switch {
	case l.Total > 0 && len(h.subs) >= l.Total:
		h.mu.Unlock()
		h.refused.Add(1)
		return nil, fmt.Errorf("%w: %d streams open, the most this relay holds", ErrTooMany, l.Total)
	case l.PerAddr > 0 && h.perAddr[key] >= l.PerAddr:
		h.mu.Unlock()
		h.refused.Add(1)
		return nil, fmt.Errorf("%w: %d streams open from this address, the most one address may hold", ErrTooMany, l.PerAddr)
	case l.Total > 0 && len(h.subs) >= l.Total-l.Total/10 && h.perAddr[key] >= max(l.Total/4, 1):
		h.mu.Unlock()
		h.refused.Add(1)
		return nil, fmt.Errorf("%w: the last places are kept for addresses holding fewer streams than this one", ErrTooMany)
	}
	s := h.newSub(c)
	h.add(s)
	h.mu.Unlock()
	return s, nil
}

// ErrTooMany: Join refused a subscriber beyond the hub's Limits.
var ErrTooMany = errors.New("events: too many streams")

// Limits bound the subscribers a Hub takes through Join: agents are not
// authenticated, so what they can hold open is bounded per address and
// in total. Zero means no limit. The last tenth of Total is kept for
// addresses holding less than a quarter of it: PerAddr is generous (a
// large site behind one NAT address), so a few addresses at it could
// otherwise take every place and leave none to anyone else.
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
