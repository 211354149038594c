// The relay list: bootstrap URLs, the group's relays learned from
// GET /-/relays, and which of them failed lately.
package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// failedFor is how long a failed relay goes to the end of the order.
const failedFor = 30 * time.Second

type relaySet struct {
	mu      sync.Mutex
	boot    []*url.URL           // shuffled once: this agent's order
	learned []*url.URL           // from /-/relays, shuffled when learned
	fetched time.Time            // when learned was last read; zero: never
	bad     map[string]time.Time // base → failed at
}

func newRelaySet(boot []*url.URL) *relaySet {
	boot = slices.Clone(boot)
	rand.Shuffle(len(boot), func(i, j int) { boot[i], boot[j] = boot[j], boot[i] })
	return &relaySet{boot: boot, bad: map[string]time.Time{}}
}

// candidates is the order to try now: the learned relays, then the
// bootstrap ones not among them; relays that failed lately go last, in
// the same order.
func (s *relaySet) candidates() []*url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var good, bad []*url.URL
	now := time.Now()
	for _, list := range [][]*url.URL{s.learned, s.boot} {
		for _, u := range list {
			k := u.String()
			if seen[k] {
				continue
			}
			seen[k] = true
			if t, ok := s.bad[k]; ok && now.Sub(t) < failedFor {
				bad = append(bad, u)
			} else {
				good = append(good, u)
			}
		}
	}
	return append(good, bad...)
}

func (s *relaySet) failed(u *url.URL) {
	s.mu.Lock()
	s.bad[u.String()] = time.Now()
	s.mu.Unlock()
}

func (s *relaySet) ok(u *url.URL) {
	s.mu.Lock()
	delete(s.bad, u.String())
	s.mu.Unlock()
}

// stale reports whether the list is older than refresh (or never read).
func (s *relaySet) stale(refresh time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetched.IsZero() || time.Since(s.fetched) > refresh
}

// set replaces the learned relays, in a new random order.
// The same relays as before keep their order: an agent stays with its
// relay.
func (s *relaySet) set(list []*url.URL) {
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetched = time.Now()
	if sameURLs(s.learned, list) {
		return
	}
	if len(list) > 0 {
		// An empty list (no relay healthy, as one relay sees it) keeps
		// the old one: something to try beats nothing.
		s.learned = list
	}
}

// touched marks the list as read without changing it (no relay answered).
func (s *relaySet) touched() {
	s.mu.Lock()
	s.fetched = time.Now()
	s.mu.Unlock()
}

// refreshRelays re-reads the group's relays from the first relay that
// answers GET /-/relays. A relay that serves none (a plain HTTP server)
// leaves the list as it is.
func (a *Agent) refreshRelays(ctx context.Context) {
	for _, base := range a.relays.candidates() {
		list, err := a.readRelays(ctx, base)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.log.Debug().Err(err).Str("relay", base.Redacted()).Msg("relay list")
			continue
		}
		a.relays.set(list)
		return
	}
	a.relays.touched()
}

func (a *Agent) readRelays(ctx context.Context, base *url.URL) ([]*url.URL, error) {
	resp, err := a.get(ctx, base.String()+wire.RelaysPath, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, wire.RelaysPath)
	}
	doc, err := wire.DecodeRelays(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return a.relayURLs(doc), nil
}

// relayURLs are the base URLs of a /-/relays document (or relays event),
// at most MaxRelays; an entry that is not a base URL does not spoil the
// list.
func (a *Agent) relayURLs(doc wire.Relays) []*url.URL {
	var out []*url.URL
	for _, r := range doc.Relays {
		if len(out) >= a.cfg.MaxRelays {
			break
		}
		if u, err := ParseBase(r.URL); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// sameURLs reports whether a and b hold the same URLs, in any order.
func sameURLs(a, b []*url.URL) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[string]int, len(a))
	for _, u := range a {
		in[u.String()]++
	}
	for _, u := range b {
		in[u.String()]--
		if in[u.String()] < 0 {
			return false
		}
	}
	return true
}
