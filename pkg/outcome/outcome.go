package outcome

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/wire"
)

// Defaults of Config.
const (
	// DefaultMaxAgents is the default Config.MaxAgents.
	DefaultMaxAgents = 100_000
	// DefaultMaxAge is the default Config.MaxAge: a week.
	DefaultMaxAge = 7 * 24 * time.Hour
)

// ErrAddrBudget: the client address holds its share of agents already.
var ErrAddrBudget = errors.New("outcome: this address reported for as many agents as it may")

// Config bounds a Table.
type Config struct {
	// MaxAgents is the most agents remembered; beyond it the agent with
	// the oldest report is forgotten. Default DefaultMaxAgents.
	MaxAgents int
	// PerAddr is the most agents one client address (events.AddrKey)
	// may report for; 0: no cap. The node sets it to events-per-addr,
	// the streams one address may hold.
	PerAddr int
	// MaxAge drops the entries whose newest report is older. Default
	// DefaultMaxAge.
	MaxAge time.Duration
}

// Table is a relay's agents' newest outcomes. It is safe for concurrent
// use.
type Table struct {
	cfg    Config
	clk    clock.Clock
	mu     sync.Mutex
	agents map[string]*list.Element // agent id → *entry in byAge
	byAge  *list.List               // oldest report first
	byAddr map[string]int           // address key → agents
}

type entry struct {
	o    wire.Outcome
	addr string
	at   time.Time
}

// New returns an empty table.
func New(cfg Config, clk clock.Clock) *Table {
	if cfg.MaxAgents <= 0 {
		cfg.MaxAgents = DefaultMaxAgents
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	return &Table{cfg: cfg, clk: clk, agents: map[string]*list.Element{}, byAge: list.New(), byAddr: map[string]int{}}
}

// Put records o, the newest report of o.Agent, from the client address
// key addr. o must be valid (wire.Outcome.Validate); its reason is made
// printable. ErrAddrBudget when addr holds PerAddr other agents.
func (t *Table) Put(o wire.Outcome, addr string) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o.Reason = wire.Printable(o.Reason, wire.MaxOutcomeReason)
	o.Group = wire.Printable(o.Group, wire.MaxNameLen)
	now := t.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	if el, ok := t.agents[o.Agent]; ok {
		e := el.Value.(*entry)
		if e.addr != addr && t.full(addr) {
			return fmt.Errorf("%w (%d)", ErrAddrBudget, t.cfg.PerAddr)
		}
		t.move(e, addr)
		e.o, e.at = o, now
		t.byAge.MoveToBack(el)
		return nil
	}
	if t.full(addr) {
		return fmt.Errorf("%w (%d)", ErrAddrBudget, t.cfg.PerAddr)
	}
	for t.byAge.Len() >= t.cfg.MaxAgents {
		t.remove(t.byAge.Front())
	}
	t.agents[o.Agent] = t.byAge.PushBack(&entry{o: o, addr: addr, at: now})
	t.byAddr[addr]++
	return nil
}

func (t *Table) full(addr string) bool {
	return t.cfg.PerAddr > 0 && t.byAddr[addr] >= t.cfg.PerAddr
}

// move counts an entry under another address.
func (t *Table) move(e *entry, addr string) {
	if e.addr == addr {
		return
	}
	t.uncount(e.addr)
	e.addr = addr
	t.byAddr[addr]++
}

func (t *Table) uncount(addr string) {
	if t.byAddr[addr]--; t.byAddr[addr] <= 0 {
		delete(t.byAddr, addr)
	}
}

func (t *Table) remove(el *list.Element) {
	e := t.byAge.Remove(el).(*entry)
	delete(t.agents, e.o.Agent)
	t.uncount(e.addr)
}

// expire drops the entries older than MaxAge.
func (t *Table) expire(now time.Time) {
	for el := t.byAge.Front(); el != nil && now.Sub(el.Value.(*entry).at) > t.cfg.MaxAge; el = t.byAge.Front() {
		t.remove(el)
	}
}

// Len is how many agents the table holds.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byAge.Len()
}

// Summary folds the table into a report's wire.Outcomes: the
// wire.MaxOutcomeGenerations newest generations reported, newest first,
// each with its counts and wire.MaxOutcomeReasons commonest failure
// reasons; Agents counts the reported agents and the ids of streaming
// (the agents holding an event stream) that have not reported.
func (t *Table) Summary(streaming []string) wire.Outcomes {
	now := t.clk.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	out := wire.Outcomes{Agents: t.byAge.Len()}
	for _, id := range streaming {
		if _, ok := t.agents[id]; !ok && id != "" {
			out.Agents++
		}
	}
	if front := t.byAge.Front(); front != nil {
		out.Oldest = front.Value.(*entry).at
	}
	gens := map[uint64]*genTally{}
	for el := t.byAge.Front(); el != nil; el = el.Next() {
		o := &el.Value.(*entry).o
		g := gens[o.Generation]
		if g == nil {
			g = &genTally{GenOutcome: wire.GenOutcome{Generation: o.Generation}}
			gens[o.Generation] = g
		}
		g.add(o)
	}
	keys := make([]uint64, 0, len(gens))
	for k := range gens {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b uint64) int { return cmp.Compare(b, a) })
	for _, k := range keys[:min(len(keys), wire.MaxOutcomeGenerations)] {
		out.Generations = append(out.Generations, gens[k].finish())
	}
	return out
}

// genTally counts one generation's agents.
type genTally struct {
	wire.GenOutcome
	reasons map[string]int
}

func (g *genTally) add(o *wire.Outcome) {
	switch o.State {
	case wire.OutcomeDownloaded:
		g.Downloaded++
	case wire.OutcomeInstalled:
		g.Installed++
	case wire.OutcomeFailed:
		g.Failed++
		if g.reasons == nil {
			g.reasons = map[string]int{}
		}
		g.reasons[o.Reason]++
	}
}

func (g *genTally) finish() wire.GenOutcome {
	g.Reasons = TopReasons(g.reasons)
	return g.GenOutcome
}

// TopReasons returns the wire.MaxOutcomeReasons commonest reasons of
// counts, the commonest first (ties by text, so the order is stable);
// nil for none.
func TopReasons(counts map[string]int) []wire.Reason {
	if len(counts) == 0 {
		return nil
	}
	out := make([]wire.Reason, 0, len(counts))
	for r, n := range counts {
		out = append(out, wire.Reason{Reason: r, Count: n})
	}
	slices.SortFunc(out, func(a, b wire.Reason) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Reason, b.Reason)
	})
	return out[:min(len(out), wire.MaxOutcomeReasons)]
}
