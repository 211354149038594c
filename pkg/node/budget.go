// The connection budget: how many connections the content port and its
// event streams may hold, so that the descriptors the process has always
// leave room for the admin port, the store, gossip and upstream
// connections, and the stream cap leaves room for health checks and
// object requests on the content port.
package node

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/ratelog"
)

// fallbackNoFile is the descriptor limit assumed where it cannot be read.
const fallbackNoFile = 10240

// DefaultEventsPerAddr is the default events-per-addr: a site of ten
// thousand agents behind one NAT address still holds its streams (and so
// does `relayd loadgen --agents 10000` from one address).
const DefaultEventsPerAddr = 10240

// DefaultConnsPerAddr is the default conns-per-addr: connections one
// address may hold besides its event streams (a large NAT'd office
// fetching at once), lowered to a quarter of max-conns when that is less.
const DefaultConnsPerAddr = 4096

// connsPerAddrFor is the per-address connection cap for conns content
// connections and the configured cap (0: none): at most a quarter of
// them, so that one address leaves three quarters to everyone else.
func connsPerAddrFor(conns, configured int) int {
	if configured <= 0 {
		return 0
	}
	return min(configured, max(conns/4, 16))
}

// budget is the plan for one process's descriptors.
type budget struct {
	// NoFile is the descriptor limit planned from.
	NoFile uint64
	// FDs is the content port's share of it (see connLimit.admit).
	FDs int
	// Conns caps the content port's connections, plain and TLS together.
	Conns int
	// Events caps the event streams; PerAddr those from one address (0:
	// no cap).
	Events, PerAddr int
	// ConnsPerAddr caps one address's content connections besides its
	// event streams (0: no cap).
	ConnsPerAddr int
	// Clamped says which configured values were lowered to fit.
	Clamped []string
}

// storeFDs is what the store may hold open besides the blobs being read:
// its descriptor cache (store.maxCachedFDs) and the index.
const storeFDs = 1024 + 16

// reserveFor is how many descriptors are kept out of the content port's
// share: the admin port, gossip, logs and the upstream's idle connections
// (256), the store's descriptor cache, and fills in flight (a temp file
// and an upstream connection each); at most half the limit, so that a
// small limit still leaves the content port the other half.
func reserveFor(nofile uint64, maxFills int) int {
	return min(int(min(nofile, 1<<30)/2), 256+storeFDs+2*max(maxFills, 0))
}

// headroomFor is how many content connections are kept out of the stream
// cap: room for /-/healthz, /-/readyz and object requests when every
// stream place is taken.
func headroomFor(conns int) int { return max(64, conns/10) }

// planBudget derives the budget from the descriptor limit and the
// configured caps (0: derived). A configured cap above what fits is
// lowered, and said so.
func planBudget(nofile uint64, maxFills, maxConns, eventsMax, perAddr int) budget {
	b := budget{NoFile: nofile}
	fit := max(int(min(nofile, 1<<30))-reserveFor(nofile, maxFills), 32)
	b.FDs, b.Conns = fit, fit
	if maxConns > 0 {
		b.Conns = min(maxConns, fit)
		if maxConns > fit {
			b.Clamped = append(b.Clamped, fmt.Sprintf("max-conns %d lowered to %d: the descriptor limit is %d (raise LimitNOFILE)", maxConns, fit, nofile))
		}
	}
	streams := max(b.Conns-headroomFor(b.Conns), 16)
	b.Events = streams
	if eventsMax > 0 {
		b.Events = min(eventsMax, streams)
		if eventsMax > streams {
			b.Clamped = append(b.Clamped, fmt.Sprintf("events-max %d lowered to %d: it must stay below the %d content connections", eventsMax, streams, b.Conns))
		}
	}
	if perAddr > 0 {
		b.PerAddr = min(perAddr, b.Events)
	}
	return b
}

// BudgetStatus is the connection budget in /v1/status (the admin
// document).
type BudgetStatus = admin.BudgetStatus

// connLimit counts the content port's connections against the cap.
type connLimit struct {
	max     int64 // connections
	fds     int64 // descriptors they may use (0: not checked)
	streams func() int64
	open    atomic.Int64
	refused atomic.Int64

	// perAddr caps the connections of one address (events.AddrKey)
	// besides its event streams (addrStreams); 0: no cap.
	perAddr     int
	stall       time.Duration // client-stall-timeout (0: none)
	addrStreams func(key string) int
	mu          sync.Mutex
	byAddr      map[string]int
}

// admitAddr takes a place of remote's address, or says it has none left:
// an address may hold perAddr connections besides its event streams
// (those have their own cap), so that one address cannot take the
// content port from everyone else. The release func gives it back.
func (l *connLimit) admitAddr(remote net.Addr) (release func(), ok bool) {
	if l.perAddr <= 0 || remote == nil {
		return func() {}, true
	}
	key := events.AddrKey(remote.String())
	streams := 0
	if l.addrStreams != nil {
		streams = l.addrStreams(key)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr == nil {
		l.byAddr = map[string]int{}
	}
	if l.byAddr[key]-streams >= l.perAddr {
		return nil, false
	}
	l.byAddr[key]++
	return func() {
		l.mu.Lock()
		if l.byAddr[key]--; l.byAddr[key] <= 0 {
			delete(l.byAddr, key)
		}
		l.mu.Unlock()
	}, true
}

// admit takes a place for a new connection, or counts a refusal. Besides
// the cap on connections, the descriptors they may use must fit in fds:
// an event stream uses its socket only, any other connection may also
// hold an object's file open while it serves it, so it counts twice
// (open connections that are not streams = open − streams).
func (l *connLimit) admit() bool {
	n := l.open.Add(1)
	var streams int64
	if l.streams != nil {
		streams = min(l.streams(), n)
	}
	if n > l.max || (l.fds > 0 && 2*n-streams > l.fds) {
		l.open.Add(-1)
		l.refused.Add(1)
		return false
	}
	return true
}

// limitListener accepts from ln; with lim, a connection beyond its cap is
// closed at once and the loop goes on (it never waits for a place, so
// the accept queue keeps draining). Errors of a process out of
// descriptors or buffers (EMFILE, ENFILE, ENOBUFS, ENOMEM) are retried
// here after a pause growing from 5 ms to 1 s, and logged at most once a
// minute with a count, instead of net/http's line per retry.
type limitListener struct {
	net.Listener
	lim *connLimit // nil: no cap
	log zerolog.Logger
	rl  *ratelog.Limiter
}

// acceptLogEvery is how often a refusal or accept error is logged (with
// the count of those held back).
const acceptLogEvery = time.Minute

func newLimitListener(ln net.Listener, lim *connLimit, log zerolog.Logger, clk clock.Clock) *limitListener {
	return &limitListener{Listener: ln, lim: lim, log: log, rl: ratelog.New(clk, acceptLogEvery)}
}

// Accept returns the next connection within the cap.
func (l *limitListener) Accept() (net.Conn, error) {
	pause := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !outOfResources(err) {
				return nil, err
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			l.rl.Event(&l.log, zerolog.ErrorLevel, "accept failed").Err(err).Dur("pause", pause).
				Msg("accept failed: out of descriptors or buffers; retrying")
			time.Sleep(pause)
			continue
		}
		pause = 0
		if l.lim == nil {
			return c, nil
		}
		releaseAddr, ok := l.lim.admitAddr(c.RemoteAddr())
		if !ok {
			_ = c.Close()
			l.lim.refused.Add(1)
			l.rl.Event(&l.log, zerolog.WarnLevel, "at the address cap").Int("conns_per_addr", l.lim.perAddr).
				Str("addr", events.AddrKey(c.RemoteAddr().String())).
				Msg("an address at its connection cap (conns-per-addr): its new connections closed at once")
			continue
		}
		if !l.lim.admit() {
			releaseAddr()
			_ = c.Close()
			l.rl.Event(&l.log, zerolog.WarnLevel, "at the cap").Int64("max_conns", l.lim.max).
				Msg("content port at its connection cap: new connections closed at once")
			continue
		}
		return countConn(c, l.lim, releaseAddr), nil
	}
}

// outOfResources reports an accept error that a later accept may not
// have: the process or system is out of descriptors or buffers.
func outOfResources(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// countedTCP is an accepted TCP connection holding a place of the cap
// until it is closed (by the server, or by the event streams after a
// hijack). It embeds *net.TCPConn, so sendfile (ReadFrom) and socket
// options (SyscallConn) reach the socket as before.
type countedTCP struct {
	*net.TCPConn
	release func()
	stall   stallWriter // see stall.go
	hold    writeHold   // see coalesce.go
}

func (c *countedTCP) Close() error {
	c.release()
	return c.TCPConn.Close()
}

// countedConn is countedTCP for any other connection.
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

func countConn(c net.Conn, lim *connLimit, releaseAddr func()) net.Conn {
	var once sync.Once
	release := func() { once.Do(func() { lim.open.Add(-1); releaseAddr() }) }
	if tc, ok := c.(*net.TCPConn); ok {
		return &countedTCP{TCPConn: tc, release: release, stall: stallWriter{stall: lim.stall}}
	}
	return &countedConn{Conn: c, release: release}
}

// planBudget raises the descriptor limit, plans the budget from it and
// the configuration, applies the stream limits and logs the plan.
func (n *Node) planBudget() {
	nofile, before, err := raiseNoFile()
	if err != nil {
		n.log.Warn().Err(err).Uint64("nofile", nofile).Msg("could not raise the file descriptor limit")
	}
	if nofile == 0 {
		nofile = fallbackNoFile
	}
	n.budget = planBudget(nofile, n.cfg.Cache.MaxFills, n.cfg.MaxConns, n.cfg.EventsMax, n.cfg.EventsPerAddr)
	n.budget.ConnsPerAddr = connsPerAddrFor(n.budget.Conns, n.cfg.ConnsPerAddr)
	n.connLimit = &connLimit{max: int64(n.budget.Conns), fds: int64(n.budget.FDs), streams: func() int64 { return int64(n.events.Len()) },
		perAddr: n.budget.ConnsPerAddr, addrStreams: n.events.AddrLen, stall: n.cfg.ClientStallTimeout}
	n.events.SetLimits(events.Limits{Total: n.budget.Events, PerAddr: n.budget.PerAddr})
	for _, c := range n.budget.Clamped {
		n.log.Warn().Msg(c)
	}
	n.log.Info().Uint64("nofile", nofile).Uint64("nofile_before", before).Int("max_conns", n.budget.Conns).
		Int("events_max", n.budget.Events).Int("events_per_addr", n.budget.PerAddr).Int("conns_per_addr", n.budget.ConnsPerAddr).
		Msg("connection budget")
}

// budgetStatus is the budget part of /v1/status.
func (n *Node) budgetStatus() *BudgetStatus {
	st := n.events.StreamStats()
	return &BudgetStatus{NoFile: n.budget.NoFile, MaxConns: n.budget.Conns, Conns: n.connLimit.open.Load(),
		ConnsRefused: n.connLimit.refused.Load(), ConnsPerAddr: n.budget.ConnsPerAddr, EventsMax: n.budget.Events, EventsPerAddr: n.budget.PerAddr,
		StreamsRefused: n.events.Refused(), StreamsReplaced: st.Replaced, StreamsStuck: st.Stuck}
}

// Conflict is an identity two relays claim (the admin document): "gossip",
// a node name of this group at two gossip addresses (gossip refuses the
// second); "stream", a child relay's group and node name held by two event
// streams (from two addresses both stay; from one address the two take
// turns, backing off).
type Conflict = admin.Conflict

// conflicts gathers the group's and the event streams' conflicts.
func (n *Node) conflicts() []Conflict {
	var out []Conflict
	if n.group != nil {
		for _, c := range n.group.Conflicts() {
			out = append(out, Conflict{Kind: "gossip", Name: c.Name, Addrs: []string{c.Addr, c.OtherAddr}, Count: c.Count, First: c.First, Last: c.Last})
		}
	}
	for _, c := range n.events.StreamConflicts() {
		out = append(out, Conflict{Kind: "stream", Name: c.Identity, Addrs: c.Addrs, Count: c.Count, First: c.First, Last: c.Last})
	}
	return out
}

// budgetMetrics is the budget as a Prometheus collector, registered apart
// from the node's (see New).
type budgetMetrics Node

var _ prometheus.Collector = (*budgetMetrics)(nil)

var (
	mConns           = newDesc("content_conns", "Content port connections open (plain and TLS).", prometheus.GaugeValue)
	mConnsMax        = newDesc("content_conns_max", "Cap on content port connections (max-conns).", prometheus.GaugeValue)
	mConnsRefused    = newDesc("content_conns_refused_total", "Content connections closed at once beyond max-conns or conns-per-addr.", prometheus.CounterValue)
	mStreamsMax      = newDesc("event_streams_max", "Cap on /-/events streams (events-max).", prometheus.GaugeValue)
	mStreamsRefused  = newDesc("event_streams_refused_total", "/-/events streams refused with 503 too_many_streams.", prometheus.CounterValue)
	mStreamsReplaced = newDesc("event_streams_replaced_total", "/-/events streams replaced by a newer one of the same identity and address.", prometheus.CounterValue)
	mStreamsStuck    = newDesc("event_streams_stuck_total", "/-/events streams dropped because the client took nothing for a heartbeat.", prometheus.CounterValue)
	mConflicts       = newDesc("identity_conflicts", "Identities two relays claim (conflicts in /v1/status).", prometheus.GaugeValue)
)

// Describe sends the budget's series.
func (m *budgetMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []desc{mConns, mConnsMax, mConnsRefused, mStreamsMax, mStreamsRefused, mStreamsReplaced, mStreamsStuck, mConflicts} {
		ch <- d.Desc
	}
}

// Collect reads the budget once and sends it.
func (m *budgetMetrics) Collect(ch chan<- prometheus.Metric) {
	n := (*Node)(m)
	b := n.budgetStatus()
	for _, v := range []struct {
		d desc
		v int64
	}{{mConns, b.Conns}, {mConnsMax, int64(b.MaxConns)}, {mConnsRefused, b.ConnsRefused}, {mStreamsMax, int64(b.EventsMax)},
		{mStreamsRefused, b.StreamsRefused}, {mStreamsReplaced, b.StreamsReplaced}, {mStreamsStuck, b.StreamsStuck},
		{mConflicts, int64(len(n.conflicts()))}} {
		ch <- prometheus.MustNewConstMetric(v.d.Desc, v.d.vtype, float64(v.v))
	}
}
