package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// netns is the simulator's own network: a bridge in the root namespace
// the relays above the branches listen on, and one namespace per branch
// group joined to the bridge by a veth pair whose both ends are limited
// by tc netem (rate and delay): the branch's WAN link.
type netns struct {
	id       string // names of everything made start with "rf"+id
	bridge   string
	bridgeIP string
	links    []*nsLink
	// qdisc is the tc qdisc of every link end: netem (rate and delay), or
	// tbf (rate only) when the kernel has no netem.
	qdisc []string
}

// nsLink is one branch namespace and its link.
type nsLink struct {
	name string // namespace
	host string // veth end in the root namespace
	ip   string // the branch end's address
	mu   sync.Mutex
	port int
}

// next is a fresh port on ip inside the namespace (nothing else listens
// in a namespace the simulator made).
func (l *nsLink) next(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.port++
	return net.JoinHostPort(ip, strconv.Itoa(20000+l.port))
}

const netPrefix = "10.231."

// newNetns makes the bridge and a namespace per branch group, or
// returns why it cannot (not root, no ip/tc, no netem): everything
// made before the failure is removed again.
func newNetns(ctx context.Context, branches []*group, rate string, delay time.Duration) (*netns, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("network namespaces need root (euid %d)", os.Geteuid())
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: %w", tool, err)
		}
	}
	if len(branches) > 250*40 {
		return nil, fmt.Errorf("%d branch groups: at most %d", len(branches), 250*40)
	}
	if addrs, _ := net.InterfaceAddrs(); addrs != nil {
		for _, a := range addrs {
			if strings.HasPrefix(a.String(), netPrefix) {
				return nil, fmt.Errorf("an interface already has an address in %s0.0/16 (%s): another fleet run?", netPrefix, a)
			}
		}
	}
	id := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	n := &netns{id: id, bridge: "rf" + id + "br", bridgeIP: netPrefix + "0.1"}
	err := n.make(ctx, branches, rate, delay)
	if err != nil {
		n.remove()
		return nil, err
	}
	return n, nil
}

func (n *netns) make(ctx context.Context, branches []*group, rate string, delay time.Duration) error {
	if err := ipcmd(ctx, "ip", "link", "add", n.bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := ipcmd(ctx, "ip", "addr", "add", n.bridgeIP+"/16", "dev", n.bridge); err != nil {
		return err
	}
	if err := ipcmd(ctx, "ip", "link", "set", n.bridge, "up"); err != nil {
		return err
	}
	n.qdisc = []string{"root", "netem", "delay", delay.String(), "rate", rate}
	for i, g := range branches {
		l := &nsLink{name: fmt.Sprintf("relayd-fleet-%s-%d", n.id, i+1), host: fmt.Sprintf("rf%sh%d", n.id, i+1),
			ip: fmt.Sprintf("%s%d.%d", netPrefix, i/250+1, i%250+2)}
		peer := fmt.Sprintf("rf%sn%d", n.id, i+1)
		n.links = append(n.links, l)
		steps := [][]string{
			{"ip", "netns", "add", l.name},
			{"ip", "link", "add", l.host, "type", "veth", "peer", "name", peer, "netns", l.name},
			{"ip", "link", "set", l.host, "master", n.bridge, "up"},
			{"ip", "-n", l.name, "link", "set", "lo", "up"},
			{"ip", "-n", l.name, "addr", "add", l.ip + "/16", "dev", peer},
			{"ip", "-n", l.name, "link", "set", peer, "up"},
		}
		for _, s := range steps {
			if err := ipcmd(ctx, s...); err != nil {
				return err
			}
		}
		if err := n.limit(ctx, l.host, peer, l.name, rate); err != nil {
			return err
		}
		g.ns = l
	}
	return nil
}

// limit puts the link's qdisc on both ends: netem, or tbf once netem
// turned out to be missing.
func (n *netns) limit(ctx context.Context, host, peer, ns, rate string) error {
	err := ipcmd(ctx, append([]string{"tc", "qdisc", "add", "dev", host}, n.qdisc...)...)
	if err != nil && n.qdisc[1] == "netem" && strings.Contains(err.Error(), "qdisc kind is unknown") {
		n.qdisc = []string{"root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms"}
		err = ipcmd(ctx, append([]string{"tc", "qdisc", "add", "dev", host}, n.qdisc...)...)
	}
	if err != nil {
		return err
	}
	return ipcmd(ctx, append([]string{"tc", "-n", ns, "qdisc", "add", "dev", peer}, n.qdisc...)...)
}

// describe says what the links are.
func (n *netns) describe() string {
	return strings.Join(n.qdisc[1:], " ")
}

// remove deletes the namespaces (their veth ends go with them) and the
// bridge; errors are printed, not returned: cleanup goes on.
func (n *netns) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, l := range n.links {
		if err := ipcmd(ctx, "ip", "netns", "del", l.name); err != nil {
			fmt.Fprintln(os.Stderr, "fleet: cleanup:", err)
		}
		_ = exec.CommandContext(ctx, "ip", "link", "del", l.host).Run() // gone with the namespace, normally
	}
	if err := ipcmd(ctx, "ip", "link", "del", n.bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		fmt.Fprintln(os.Stderr, "fleet: cleanup:", err)
	}
}

func ipcmd(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
