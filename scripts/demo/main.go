// Command demo runs the main job on loopback: a relayd origin serving a
// small update tree, a relayd proxy in front of it, and an agent-like
// client fetching every object through the relay twice. It prints where
// each response came from and how many bytes crossed the "WAN" (origin →
// relay), then stops both processes.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	relayd := flag.String("relayd", "bin/relayd", "relayd binary")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.Parse()
	if err := run(*relayd, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var tree = map[string]int{
	"security/2026-11/openssl-3.0.15-fix.patch": 48 << 10,
	"security/2026-11/kernel-6.1.119.delta":     3 << 20,
	"software/linux-amd64/1.4.2/agent.tar.gz":   24 << 20,
	"software/windows-amd64/1.4.2/agent.msi":    16 << 20,
	"debian/dists/stable/InRelease":             12 << 10,
}

func run(relayd string, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(relayd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("relayd binary %s: %w (run make build)", abs, err)
	}
	work, err := os.MkdirTemp("", "relayd-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	root := filepath.Join(work, "origin")
	sums := map[string]string{}
	for p, size := range tree {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		b := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(size), 42))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
		// Published a month ago, like most of an update tree: the relay's
		// heuristic freshness (RFC 9111) then serves it without asking.
		old := time.Now().Add(-30 * 24 * time.Hour)
		if err := os.Chtimes(full, old, old); err != nil {
			return err
		}
		s := sha256.Sum256(b)
		sums[p] = hex.EncodeToString(s[:])
	}
	originAddr, relayAddr, adminAddr := freeAddr(), freeAddr(), freeAddr()
	fmt.Printf("relayd demo (work dir %s)\n\n", work)
	origin, err := start(ctx, abs, filepath.Join(work, "origin.log"), "serve", "--mode", "origin", "--node", "origin",
		"--root", root, "--listen", originAddr, "--admin", "")
	if err != nil {
		return err
	}
	defer origin.stop()
	relay, err := start(ctx, abs, filepath.Join(work, "relay.log"), "serve", "--mode", "proxy", "--node", "relay-1",
		"--group", "branch-a", "--upstream", "http://"+originAddr, "--data-dir", filepath.Join(work, "relay-data"),
		"--listen", relayAddr, "--admin", adminAddr, "--gossip", "127.0.0.1:0", "--cache-max", "1GiB")
	if err != nil {
		return err
	}
	defer relay.stop()
	for _, a := range []string{originAddr, relayAddr} {
		if err := waitHealthy(ctx, a); err != nil {
			return err
		}
	}
	fmt.Printf("origin  http://%s  (serves %s)\nrelay   http://%s  (proxy cache, upstream = origin)\n\n", originAddr, root, relayAddr)

	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "fetch\tpath\tbytes\tX-Relay-Cache\ttime\tsha256 ok")
	var served int64
	for round := 1; round <= 2; round++ {
		for _, p := range paths {
			start := time.Now()
			n, cache, sum, err := fetch(ctx, "http://"+relayAddr+"/"+p)
			if err != nil {
				return err
			}
			served += n
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%v\n", round, p, n, cache, time.Since(start).Round(100*time.Microsecond), sum == sums[p])
			if sum != sums[p] {
				tw.Flush()
				return fmt.Errorf("%s: wrong bytes through the relay", p)
			}
		}
	}
	tw.Flush()
	status, _ := getBody(ctx, "http://"+adminAddr+"/v1/status")
	upstream, _ := strconv.ParseFloat(metric(ctx, "http://"+adminAddr+"/metrics", "relayd_upstream_bytes_total"), 64)
	fmt.Printf("\nbytes served to clients: %d\nbytes fetched from origin (WAN): %d (%.0f%% of what was served)\n", served, int64(upstream), 100*upstream/float64(served))
	fmt.Printf("relay status: %s\n", strings.TrimSpace(status))
	fmt.Println("\nThe first round is fetched from the origin once (MISS) and streamed to the client;")
	fmt.Println("the second round is served from the relay's disk (HIT). Origin and relay logs:")
	fmt.Printf("  %s\n  %s\n", filepath.Join(work, "origin.log"), filepath.Join(work, "relay.log"))
	if !keep {
		fmt.Println("(removed when the demo exits; run with --keep to keep them)")
	}
	return nil
}

type proc struct{ cmd *exec.Cmd }

func start(ctx context.Context, bin, logPath string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start relayd: %w", err)
	}
	return &proc{cmd: cmd}, nil
}

// stop asks the process to leave (SIGTERM) and kills it if it lingers.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHealthy(ctx context.Context, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := getBody(ctx, "http://"+addr+"/-/healthz"); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not become healthy", addr)
}

func fetch(ctx context.Context, url string) (int64, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, "", "", fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	return n, resp.Header.Get("X-Relay-Cache"), hex.EncodeToString(h.Sum(nil)), err
}

func getBody(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return string(b), err
}

func metric(ctx context.Context, url, name string) string {
	body, err := getBody(ctx, url)
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return "?"
}
