package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/group"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/httpx"
	"github.com/relayd/relayd/pkg/wire"
)

// openGroup starts gossip for a relay and routes the cache's misses
// through the group's owners.
func (n *Node) openGroup(cfg Config, clk clock.Clock) error {
	if cfg.Gossip == "" {
		return nil
	}
	var key []byte
	if cfg.GossipKeyFile != "" {
		var err error
		if key, err = group.LoadKey(cfg.GossipKeyFile); err != nil {
			return err
		}
	} else {
		// memberlist without a key takes anyone's gossip: the label (the
		// group's name) is no secret.
		n.warnings = append(n.warnings, warnGossipUnkeyed)
		n.log.Warn().Str("gossip", cfg.Gossip).Msg(warnGossipUnkeyed)
	}
	gcfg := group.DefaultConfig()
	gcfg.Name, gcfg.Group, gcfg.Bind, gcfg.Join, gcfg.Key = cfg.Node, cfg.Group, cfg.Gossip, cfg.Join, key
	g, err := group.New(gcfg, n.meta(), n.log, clk)
	if err != nil {
		return err
	}
	n.group = g
	// Peers are on the LAN: no upstream proxy, short timeouts.
	pcfg := hierarchy.Config{UserAgent: "relayd/" + Version + " (peer " + cfg.Node + ")",
		ConnectTimeout: time.Second, StallTimeout: 5 * time.Second}
	if n.tls != nil {
		pcfg.TLS = n.tls.ClientConfig() // peers advertising https
	}
	pc, err := hierarchy.New(pcfg, n.log)
	if err != nil {
		return err
	}
	p := &peers{g: g, client: pc, self: cfg.Node, mode: cfg.Mode}
	if n.cache != nil {
		n.cache.SetPeers(p)
	}
	if n.mirror != nil {
		n.mirror.SetPeers(p)
	}
	return nil
}

// advertiseURL is the content URL this relay announces.
func advertiseURL(cfg Config, bound string) string {
	if cfg.Advertise != "" {
		return strings.TrimRight(cfg.Advertise, "/")
	}
	host, port, _ := net.SplitHostPort(bound)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host, _ = os.Hostname()
	}
	return "http://" + net.JoinHostPort(host, port)
}

// meta is what this relay tells its group now.
func (n *Node) meta() group.Meta {
	m := group.Meta{Group: n.cfg.Group, Mode: n.cfg.Mode, URL: n.url, Ready: n.ready() == nil}
	if n.mirror != nil {
		if l := n.mirror.Live(); l != nil {
			m.Generation = l.Catalog.Generation
			m.Verified, m.Expires = unixOrZero(l.Verified), unixOrZero(l.Expires)
		}
	}
	return m
}

// publishMeta keeps the group's view of this relay (readiness,
// generation) current until ctx ends.
func (n *Node) publishMeta(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m := n.meta()
			if err := n.group.SetMeta(func(x *group.Meta) { *x = m }); err != nil {
				n.log.Warn().Err(err).Msg("update group metadata")
			}
			n.publishRelays()
		}
	}
}

// relays lists the group's healthy relays in a fresh random order.
func (n *Node) relays() wire.Relays {
	out := wire.Relays{Group: n.cfg.Group, Relays: []wire.Relay{}}
	if n.group == nil {
		if n.ready() == nil {
			m := n.meta()
			out.Relays = append(out.Relays, wire.Relay{Name: n.cfg.Node, URL: n.url, Mode: n.cfg.Mode, Generation: m.Generation})
		}
		return out
	}
	for _, m := range n.group.Shuffled() {
		out.Relays = append(out.Relays, wire.Relay{Name: m.Name, URL: m.Meta.URL, Mode: m.Meta.Mode, Generation: m.Meta.Generation})
	}
	return out
}

// members is /v1/members.
func (n *Node) members() (admin.Members, error) {
	if n.group == nil {
		return admin.Members{}, &httpx.Error{Status: http.StatusNotFound, Code: "no_group", Msg: "this node runs without a group (--gossip is empty)"}
	}
	ms := n.group.Members()
	// Never null in JSON: an empty group is [].
	return admin.Members{Group: n.cfg.Group, Self: n.cfg.Node, Members: append(make([]admin.Member, 0, len(ms)), ms...)}, nil
}

// peers is the group as the proxy cache sees it.
type peers struct {
	g      *group.Group
	client *hierarchy.Client
	self   string
	mode   string
}

func (p *peers) Owner(key string) (string, bool) {
	m, ok := p.g.Owner(key)
	// A member of another mode (a group mixing mirrors and proxies)
	// answers differently for the same path: fetch upstream instead.
	if !ok || m.Name == p.self || m.Meta.URL == "" || m.Meta.Mode != p.mode {
		return "", false
	}
	return m.Meta.URL, true
}

func (p *peers) Owners(key string) []string {
	var out []string
	for _, m := range p.g.Owners(key) {
		if m.Name == p.self {
			break
		}
		if m.Meta.URL != "" && m.Meta.Mode == p.mode {
			out = append(out, m.Meta.URL)
		}
	}
	return out
}

func (p *peers) Others() []string {
	var out []string
	for _, m := range p.g.Members() {
		if m.Name != p.self && m.State == "alive" && m.Meta.URL != "" && m.Meta.Mode == p.mode {
			out = append(out, m.Meta.URL)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (p *peers) Fetch(ctx context.Context, base, key string, hdr http.Header) (*http.Response, error) {
	h := hdr.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(wire.PeerHeader, p.self)
	resp, err := p.client.FetchFrom(ctx, base, key, h)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("peer %s", base), err)
	}
	return resp, nil
}

// warnGossipUnkeyed is logged at start and shown in /v1/status by a relay
// gossiping without gossip-key-file.
const warnGossipUnkeyed = "gossip without gossip-key-file: anyone who reaches the gossip port can join the group, " +
	"be routed cache misses and make this relay keep members it never sees (relayd keygen --gossip; docs/operations.md)"

// unixOrZero is t in Unix seconds, 0 for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// timeOrZero is the time of Unix seconds s, the zero time for 0.
func timeOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// groupFormed says whether every member a mirror was told to --join is
// in its group: its first sync waits for it (mirror.Config.Formed), as a
// relay that syncs before it sees the others fetches upstream what they
// own (issue 18: generation 1 left the origin twice when three top
// mirrors started at once).
func (n *Node) groupFormed(join []string, self string) func() bool {
	want := 1 + len(otherJoins(join, self))
	return func() bool { return n.aliveMembers() >= want }
}

// aliveMembers counts the members of the group seen alive, this relay
// included; 0 without a group.
func (n *Node) aliveMembers() int {
	if n.group == nil {
		return 0
	}
	k := 0
	for _, mb := range n.group.Members() {
		if mb.State == "alive" {
			k++
		}
	}
	return k
}

// otherJoins is the distinct --join addresses but this relay's own
// gossip address.
func otherJoins(join []string, self string) []string {
	var out []string
	for _, j := range join {
		if j != "" && j != self && !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out
}
