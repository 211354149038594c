// The relay list: whom a child asks, in which order.
package relayclient

import (
	"context"
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// ListConfig says where a List starts and how it orders relays.
type ListConfig struct {
	// Seeds are the configured base URLs: the first to ask for the
	// group's relays, and the last resort when every learned one fails.
	Seeds []*url.URL
	// Fallback are base URLs used only when seeds and learned relays all
	// failed (see Fallbacks); never mixed into Candidates.
	Fallback []*url.URL
	// FailedFor is how long a relay that failed goes to the end of the
	// order. Default 30s.
	FailedFor time.Duration
	// Refresh is how often the list is re-read (Stale, Run). Default 30s.
	Refresh time.Duration
	// Max caps the relays taken from one answer. Default 256.
	Max int
	// Stable keeps one random order per List (an agent stays with its
	// relay: its order is drawn when the list is learned); otherwise
	// every Candidates call draws a fresh order (a relay spreads its
	// requests over its parents).
	Stable bool
	// Clock is the time source. Default the wall clock.
	Clock clock.Clock
	// Parse checks a learned relay's base URL. Default cleanpath.Base.
	Parse func(string) (*url.URL, error)
	// OnChange, if set, is told when Set changes the learned relays: the
	// answer and how many of its entries were skipped.
	OnChange func(doc wire.Relays, learned []Relay, skipped int)
}

// Relay is one learned relay.
type Relay struct {
	URL *url.URL
	// Generation is its live catalog generation; 0: unknown.
	Generation uint64
}

// List is a relay list. It is safe for concurrent use.
type List struct {
	cfg     ListConfig
	kick    chan struct{}
	mu      sync.Mutex
	seeds   []*url.URL           // in this List's order when Stable
	learned []Relay              // sorted by URL; shuffled when Stable
	fetched time.Time            // when the list was last read; zero: never
	bad     map[string]time.Time // base → failed at
}

// NewList returns a List of the seeds alone.
func NewList(cfg ListConfig) *List {
	if cfg.FailedFor <= 0 {
		cfg.FailedFor = 30 * time.Second
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Max <= 0 {
		cfg.Max = 256
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Parse == nil {
		cfg.Parse = cleanpath.Base
	}
	l := &List{cfg: cfg, kick: make(chan struct{}, 1), seeds: slices.Clone(cfg.Seeds), bad: map[string]time.Time{}}
	if cfg.Stable {
		shuffle(l.seeds)
	}
	return l
}

func shuffle[T any](s []T) { rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }

// Seeds returns the configured seeds.
func (l *List) Seeds() []*url.URL { return slices.Clone(l.cfg.Seeds) }

// Candidates is the order to ask now: learned relays that have
// generation want (or whose generation is unknown), then learned relays
// behind want, then seeds not among the learned; relays that failed
// within FailedFor come after all the others, in the same order.
func (l *List) Candidates(want uint64) []*url.URL {
	l.mu.Lock()
	learned := slices.Clone(l.learned)
	seeds := slices.Clone(l.seeds)
	l.mu.Unlock()
	if !l.cfg.Stable {
		shuffle(learned)
		shuffle(seeds)
	}
	var ahead, behind []*url.URL
	seen := map[string]bool{}
	for _, r := range learned {
		seen[r.URL.String()] = true
		if want > 0 && r.Generation > 0 && r.Generation < want {
			behind = append(behind, r.URL)
		} else {
			ahead = append(ahead, r.URL)
		}
	}
	out := append(ahead, behind...)
	for _, u := range seeds {
		if !seen[u.String()] {
			seen[u.String()] = true
			out = append(out, u)
		}
	}
	return l.coolLast(out)
}

// Fallbacks returns the fallbacks in a fresh random order, those that
// failed lately last.
func (l *List) Fallbacks() []*url.URL { return l.Shuffled(l.cfg.Fallback) }

// Shuffled returns bases in a fresh random order, those that failed
// lately last.
func (l *List) Shuffled(bases []*url.URL) []*url.URL {
	out := slices.Clone(bases)
	shuffle(out)
	return l.coolLast(out)
}

// coolLast moves the bases that failed lately to the end, keeping the
// order.
func (l *List) coolLast(bases []*url.URL) []*url.URL {
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*url.URL, 0, len(bases))
	var cooling []*url.URL
	for _, u := range bases {
		if t, ok := l.bad[u.String()]; ok && now.Sub(t) < l.cfg.FailedFor {
			cooling = append(cooling, u)
		} else {
			out = append(out, u)
		}
	}
	return append(out, cooling...)
}

// Failed puts u at the end of the order for FailedFor.
func (l *List) Failed(u *url.URL) {
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	l.bad[u.String()] = now
	l.mu.Unlock()
}

// OK takes u out of the backoff.
func (l *List) OK(u *url.URL) {
	l.mu.Lock()
	delete(l.bad, u.String())
	l.mu.Unlock()
}

// Learned returns the learned relays, sorted by URL.
func (l *List) Learned() []Relay {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.learned)
	sort.Slice(out, func(i, j int) bool { return out[i].URL.String() < out[j].URL.String() })
	return out
}

// Set replaces the learned relays with doc's (a /-/relays answer or a
// "relays" event), at most Max; an entry that is not a base URL is
// skipped. An empty list keeps the old one: something to try beats
// nothing. It reports whether the set of relays changed, and how many
// entries were skipped. The same relays as before keep their order.
func (l *List) Set(doc wire.Relays) (changed bool, skipped int) {
	var rs []Relay
	for _, r := range doc.Relays {
		if len(rs) >= l.cfg.Max {
			break
		}
		u, err := l.cfg.Parse(r.URL)
		if err != nil {
			skipped++
			continue
		}
		rs = append(rs, Relay{URL: u, Generation: r.Generation})
	}
	if l.cfg.Stable {
		shuffle(rs)
	} else {
		sort.Slice(rs, func(i, j int) bool { return rs[i].URL.String() < rs[j].URL.String() })
	}
	changed = l.set(rs)
	if changed && l.cfg.OnChange != nil {
		l.cfg.OnChange(doc, l.Learned(), skipped)
	}
	return changed, skipped
}

// set is Set once the relays are parsed.
func (l *List) set(rs []Relay) bool {
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fetched = now
	if len(rs) == 0 {
		return false
	}
	if sameRelays(l.learned, rs) {
		// The order stays; generations are news.
		gen := map[string]uint64{}
		for _, r := range rs {
			gen[r.URL.String()] = r.Generation
		}
		for i := range l.learned {
			l.learned[i].Generation = gen[l.learned[i].URL.String()]
		}
		return false
	}
	l.learned = rs
	return true
}

// sameRelays reports whether a and b hold the same URLs, in any order.
func sameRelays(a, b []Relay) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[string]int, len(a))
	for _, r := range a {
		in[r.URL.String()]++
	}
	for _, r := range b {
		in[r.URL.String()]--
		if in[r.URL.String()] < 0 {
			return false
		}
	}
	return true
}

// Stale reports whether the list is older than Refresh (or never read).
func (l *List) Stale() bool {
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fetched.IsZero() || now.Sub(l.fetched) > l.cfg.Refresh
}

// ReadFunc reads base's /-/relays.
type ReadFunc func(ctx context.Context, base *url.URL) (wire.Relays, error)

// Discover re-reads the list from the first relay that answers: a seed,
// or when no seed answers a relay learned before (the seeds may all have
// been replaced). A relay that serves no list (a plain HTTP server)
// leaves it as it is. It returns the answer taken (ok false: none).
func (l *List) Discover(ctx context.Context, read ReadFunc, onErr func(*url.URL, error)) (doc wire.Relays, ok bool) {
	seeds := slices.Clone(l.cfg.Seeds)
	var known []*url.URL
	for _, r := range l.Learned() {
		if !slices.ContainsFunc(seeds, func(u *url.URL) bool { return u.String() == r.URL.String() }) {
			known = append(known, r.URL)
		}
	}
	shuffle(seeds)
	shuffle(known)
	// Relays that failed lately are asked last, seeds or not.
	for _, base := range l.coolLast(append(seeds, known...)) {
		doc, err := read(ctx, base)
		if ctx.Err() != nil {
			return doc, false
		}
		if err != nil {
			if onErr != nil {
				onErr(base, err)
			}
			continue
		}
		l.Set(doc)
		return doc, true
	}
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	l.fetched = now // no relay answered: not again before Refresh
	l.mu.Unlock()
	return doc, false
}

// Kick asks Run to re-read the list now.
func (l *List) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run keeps the list current until ctx ends: at once, every Refresh (on
// the clock, when it schedules), and after Kick.
func (l *List) Run(ctx context.Context, read ReadFunc, onErr func(*url.URL, error)) {
	tc, _ := l.cfg.Clock.(clock.Timers)
	if tc == nil {
		tc = clock.Real{}
	}
	tick := make(chan struct{}, 1)
	t := tc.AfterFunc(0, func() {
		select {
		case tick <- struct{}{}:
		default:
		}
	})
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-l.kick:
		}
		t.Stop()
		l.Discover(ctx, read, onErr)
		select {
		case <-tick: // fired while reading
		default:
		}
		t.Reset(l.cfg.Refresh)
	}
}
