package group

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/ratelog"
)

// Config is a relay's membership configuration.
type Config struct {
	// Name is this relay's node name, unique in the group. Required.
	Name string
	// Group is the group name. Required.
	Group string
	// Bind is the gossip address (TCP and UDP), host:port. Default ":7946".
	Bind string
	// Advertise is the address peers reach this node's gossip at; default:
	// the bind address, or the first private address for a wildcard bind.
	Advertise string
	// Join lists host:port of members to join at start (any of them).
	Join []string
	// Key is the gossip encryption key (16, 24 or 32 bytes); nil gossips
	// in clear text. Every member must have the same key.
	Key []byte
	// ProbeInterval, ProbeTimeout and SuspicionMult tune failure
	// detection for a LAN: the defaults (500ms, 250ms, 3) put a relay that
	// died out of the healthy set within about 3 s.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int
	// GossipInterval between gossip rounds. Default 100ms.
	GossipInterval time.Duration
	// RejoinInterval retries the Join list while alone. Default 10s.
	RejoinInterval time.Duration
	// ForgetAfter is how long a member that left or failed stays listed
	// (as gone) before it is forgotten. Default 10m.
	ForgetAfter time.Duration
}

// DefaultConfig returns the LAN defaults.
func DefaultConfig() Config {
	return Config{Bind: ":7946", ProbeInterval: 500 * time.Millisecond, ProbeTimeout: 250 * time.Millisecond,
		SuspicionMult: 3, GossipInterval: 100 * time.Millisecond, RejoinInterval: 10 * time.Second, ForgetAfter: 10 * time.Minute}
}

// Member is one relay of the group as this node sees it.
type Member = admindoc.Member

// healthy reports whether agents and peers should be sent to m.
func healthy(m Member) bool { return m.State == "alive" && m.Meta.Ready }

// Group is this relay's view of its group.
type Group struct {
	cfg   Config
	log   zerolog.Logger
	clock clock.Clock
	ml    *memberlist.Memberlist
	lim   *ratelog.Limiter // lines anyone on the LAN can cause (garbage packets, refused nodes)

	metaMu sync.Mutex
	meta   Meta

	mu      sync.RWMutex
	members map[string]*Member
	// all, healthy and owners are views of members sorted by name, rebuilt
	// on every change (see rebuild): a miss asks for the owner, and must
	// not copy and sort the group to learn it. Never modified once built,
	// so readers share them.
	all, healthy, owners []Member
	down                 bool // gossip shut down

	conflictMu sync.Mutex
	conflicts  map[string]*Conflict // name and other address → conflict
}

// New starts gossip on cfg.Bind. It does not join anyone yet (Run does).
func New(cfg Config, meta Meta, log zerolog.Logger, clk clock.Clock) (*Group, error) {
	if cfg.Name == "" || cfg.Group == "" {
		return nil, errors.New("group: node name and group are required")
	}
	cfg = cfg.withDefaults()
	meta.Group = cfg.Group
	if _, err := EncodeMeta(meta, memberlist.MetaMaxSize); err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, log: log.With().Str("component", "group").Logger(), clock: clk, meta: meta,
		members: map[string]*Member{}, conflicts: map[string]*Conflict{}, lim: ratelog.New(clk, ratelog.DefaultEvery)}

	host, portStr, err := net.SplitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("group: gossip address %q: %w", cfg.Bind, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("group: gossip port %q: %w", portStr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr, mc.BindPort = host, port
	if cfg.Advertise != "" {
		ah, ap, err := net.SplitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("group: advertise address %q: %w", cfg.Advertise, err)
		}
		mc.AdvertiseAddr = ah
		if mc.AdvertisePort, err = strconv.Atoi(ap); err != nil {
			return nil, fmt.Errorf("group: advertise port %q: %w", ap, err)
		}
	}
	// The label is checked on every packet before anything else: relays
	// of another group are dropped at the door.
	mc.Label = "relayd/" + cfg.Group
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.GossipInterval = cfg.GossipInterval
	// Full-state exchanges repair any gossip that was missed; memberlist
	// stretches the interval for large groups (x2 above 32 members).
	mc.PushPullInterval = 10 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.SecretKey = cfg.Key
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Delegate = (*delegate)(g)
	mc.Events = (*events)(g)
	mc.Alive = (*alive)(g)
	mc.Conflict = (*conflicts)(g)
	mc.Logger = memberlistLogger(g.log, g.lim)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("group: start gossip on %s: %w", cfg.Bind, err)
	}
	g.ml = ml
	return g, nil
}

// withDefaults fills the zero fields of cfg from DefaultConfig.
func (cfg Config) withDefaults() Config {
	def := DefaultConfig()
	if cfg.Bind == "" {
		cfg.Bind = def.Bind
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = def.ProbeInterval
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = def.ProbeTimeout
	}
	if cfg.SuspicionMult <= 0 {
		cfg.SuspicionMult = def.SuspicionMult
	}
	if cfg.GossipInterval <= 0 {
		cfg.GossipInterval = def.GossipInterval
	}
	if cfg.RejoinInterval <= 0 {
		cfg.RejoinInterval = def.RejoinInterval
	}
	if cfg.ForgetAfter <= 0 {
		cfg.ForgetAfter = def.ForgetAfter
	}
	return cfg
}

// Addr is the bound gossip address.
func (g *Group) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Run joins the configured members (retrying while alone) and keeps the
// membership until ctx ends, forgetting members gone for ForgetAfter; then
// it leaves gracefully, so the others stop sending agents here at once,
// and shuts gossip down.
func (g *Group) Run(ctx context.Context) error {
	defer g.shutdown()
	t := time.NewTimer(0)
	defer t.Stop()
	// One more join shortly after the first: when many relays start at
	// once, one can miss members that joined the seed a moment later, and
	// memberlist's full-state exchange (its only repair) comes 30 s apart
	// in a group over 32 members.
	const settle = 2 * time.Second
	joined, settled := false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		g.forget()
		next := g.cfg.RejoinInterval
		if len(g.cfg.Join) > 0 && (g.ml.NumMembers() < 2 || (joined && !settled)) {
			if n, err := g.ml.Join(g.cfg.Join); err != nil {
				g.log.Warn().Err(err).Strs("join", g.cfg.Join).Msg("could not join the group yet; retrying")
			} else if !joined {
				g.log.Info().Int("contacted", n).Msg("joined the group")
				joined, next = true, settle
			} else {
				settled = true
			}
		}
		t.Reset(next)
	}
}

// Close leaves the group and stops gossip; Run does it when its context
// ends. Safe to call more than once.
func (g *Group) Close() { g.shutdown() }

func (g *Group) shutdown() {
	g.mu.Lock()
	down := g.down
	g.down = true
	g.mu.Unlock()
	if down {
		return
	}
	if err := g.ml.Leave(2 * time.Second); err != nil {
		g.log.Warn().Err(err).Msg("leave")
	}
	if err := g.ml.Shutdown(); err != nil {
		g.log.Warn().Err(err).Msg("gossip shutdown")
	}
}

// SetMeta changes this node's metadata (generation, readiness) and tells
// the group.
func (g *Group) SetMeta(fn func(*Meta)) error {
	g.metaMu.Lock()
	m := g.meta
	fn(&m)
	m.Group = g.cfg.Group
	if _, err := EncodeMeta(m, memberlist.MetaMaxSize); err != nil {
		g.metaMu.Unlock()
		return err
	}
	same := m == g.meta
	g.meta = m
	g.metaMu.Unlock()
	if same {
		return nil
	}
	return g.ml.UpdateNode(2 * time.Second)
}

// Members returns every member this node knows of, itself included,
// sorted by name. Members gone for longer than ForgetAfter are not listed.
func (g *Group) Members() []Member {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return slices.Clone(g.all)
}

// Healthy returns the healthy members, itself included if healthy, sorted
// by name.
func (g *Group) Healthy() []Member {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return slices.Clone(g.healthy)
}

// Shuffled returns the healthy members in a fresh random order.
func (g *Group) Shuffled() []Member {
	h := g.Healthy()
	rand.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
	return h
}

// Owner returns the member that fetches key from upstream: among the
// healthy members, and the mirrors that are alive but still syncing their
// first generation — they are not ready for agents, but fetching each
// object once for the group is exactly their job then.
func (g *Group) Owner(key string) (Member, bool) {
	g.mu.RLock()
	owners := g.owners
	g.mu.RUnlock()
	return Owner(owners, key)
}

// Owners ranks the members that may fetch key (see Owner): the owner
// first, then whom the key falls to when the owner fails.
func (g *Group) Owners(key string) []Member {
	g.mu.RLock()
	owners := g.owners
	g.mu.RUnlock()
	return Ranked(owners, key)
}

// Name is this node's name.
func (g *Group) Name() string { return g.cfg.Name }

func (g *Group) set(n *memberlist.Node, state string) {
	meta, err := DecodeMeta(n.Meta)
	if err != nil && state == "alive" {
		g.log.Warn().Err(err).Str("peer", n.Name).Msg("peer metadata unreadable")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members[n.Name] = &Member{Name: n.Name, Addr: n.Address(), State: state, Meta: meta,
		LastChange: g.clock.Now(), Self: n.Name == g.cfg.Name}
	g.rebuild()
}

// forget drops the members gone for longer than ForgetAfter: a relay
// replaced by another name must not stay listed for good.
func (g *Group) forget() {
	before := g.clock.Now().Add(-g.cfg.ForgetAfter)
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.members)
	maps.DeleteFunc(g.members, func(_ string, m *Member) bool { return m.State == "gone" && m.LastChange.Before(before) })
	if len(g.members) != n {
		g.rebuild()
	}
}

// rebuild makes the sorted views of members anew. Called with g.mu held.
func (g *Group) rebuild() {
	g.all = make([]Member, 0, len(g.members))
	for _, m := range g.members {
		g.all = append(g.all, *m)
	}
	slices.SortFunc(g.all, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	g.healthy, g.owners = nil, nil
	for _, m := range g.all {
		if healthy(m) {
			g.healthy = append(g.healthy, m)
		}
		// The owners are the healthy members and the mirrors that are
		// alive but still syncing their first generation (see Owner).
		if healthy(m) || (m.State == "alive" && m.Meta.Mode == "mirror") {
			g.owners = append(g.owners, m)
		}
	}
}

// delegate gives memberlist this node's metadata.
type delegate Group

func (d *delegate) NodeMeta(limit int) []byte {
	g := (*Group)(d)
	g.metaMu.Lock()
	defer g.metaMu.Unlock()
	b, err := EncodeMeta(g.meta, limit)
	if err != nil {
		g.log.Error().Err(err).Msg("node metadata")
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                {}
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *delegate) LocalState(bool) []byte          { return nil }
func (d *delegate) MergeRemoteState([]byte, bool)   {}

// events tracks membership.
type events Group

func (e *events) NotifyJoin(n *memberlist.Node) {
	(*Group)(e).set(n, "alive")
	(*Group)(e).log.Info().Str("peer", n.Name).Str("addr", n.Address()).Msg("member joined")
}

// NotifyLeave is called for members that left and for members found
// dead; memberlist does not say which (the Node's State is not updated).
func (e *events) NotifyLeave(n *memberlist.Node) {
	(*Group)(e).set(n, "gone")
	(*Group)(e).log.Info().Str("peer", n.Name).Msg("member gone (left or failed)")
}

func (e *events) NotifyUpdate(n *memberlist.Node) { (*Group)(e).set(n, "alive") }

// alive refuses nodes of another group (a second line behind the label).
type alive Group

func (a *alive) NotifyAlive(n *memberlist.Node) error {
	g := (*Group)(a)
	m, err := DecodeMeta(n.Meta)
	if err != nil {
		g.lim.Event(&g.log, zerolog.WarnLevel, "refused a node").Err(err).Str("peer", n.Name).Msg("refused a node with unreadable metadata")
		return err
	}
	if m.Group != g.cfg.Group {
		g.lim.Event(&g.log, zerolog.WarnLevel, "refused a node").Str("peer", n.Name).Str("peer_group", m.Group).Str("group", g.cfg.Group).
			Msg("refused a node of another group")
		return fmt.Errorf("group: node %s belongs to group %q, not %q", n.Name, m.Group, g.cfg.Group)
	}
	return nil
}
