// Command hostile is the attacker of the benchmark's hostile scenario
// (scripts/bench/scenarios/hostile.sh). Loopback only.
//
//	hostile reports -url URL/-/report [-c 10] [-size 8MiB] [-tree-key FILE] [-H 'K: V']…
//
// sends -c oversized reports at once, each a child report with about
// 310,000 tiny children per 8 MiB (the shape that made a relay decode
// ~300 MB per request), signed with the tree key when -tree-key is given
// (pkg/treeauth, as a child relay of the tree signs: an insider's
// oversized report), and prints
// "REPORTS sent=N bytes=B statuses=CODE:COUNT,… errors=N secs=S".
//
//	hostile streams -url URL [-n 15000] [-from 127.0.0.2,127.0.0.3,127.0.0.4]
//
// opens -n idle GET /-/events streams (round-robin over the -from source
// addresses, never reading past the status line), prints
// "OPENED tried=… ok=… refused=… other=… dial_errors=… open_secs=…" and
// holds them until SIGTERM (or -max-hold). It raises its soft
// RLIMIT_NOFILE to the hard limit; -n must fit under it (run several
// processes for more streams than one may hold).
//
//	hostile probe -url URL -admin URL [-probe 50ms] [-probe-timeout 2s]
//
// GETs URL/-/healthz and ADMIN/v1/status on a new connection every -probe
// until SIGTERM (or -max), then prints "PROBE healthz_p50_ms=…
// healthz_p99_ms=… healthz_max_ms=… healthz_fail=… healthz_probes=…
// healthz_hold_… status_… status_hold_…": over every probe, and over those
// made after SIGUSR1 (sent when every stream is open: the hold). A probe
// that fails or takes longer than -probe-timeout counts as a failure and
// as -probe-timeout in the latencies.
//
//	hostile late -url URL
//
// opens one stream from 127.0.0.1, as a legitimate agent arriving late,
// and prints "LATE status=CODE" (0: no answer within 2 s).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relayd/relayd/pkg/treeauth"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hostile reports|streams|probe|late [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "reports":
		err = reports(os.Args[2:])
	case "streams":
		err = streams(os.Args[2:])
	case "probe":
		err = probe(os.Args[2:])
	case "late":
		err = late(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (reports, streams, probe, late)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
}

// headers is a repeatable -H 'Key: Value' flag.
type headers []string

func (h *headers) String() string     { return strings.Join(*h, "; ") }
func (h *headers) Set(s string) error { *h = append(*h, s); return nil }

// loopbackURL parses u and refuses anything but a loopback host.
func loopbackURL(u string) (*url.URL, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(pu.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s: loopback addresses only", u)
	}
	return pu, nil
}

// The sender the reports name (and sign as, with -tree-key).
const reportGroup, reportNode = "stranger", "s1"

// reportBody is a report whose children fill size bytes.
func reportBody(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 256)
	fmt.Fprintf(&b, `{"group":%q,"node":%q,"mode":"proxy","generation":1,"ready":true,"agents":0,"children":[`, reportGroup, reportNode)
	for i := 0; b.Len() < size-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"group":"g","node":"%d"}`, i%1000)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func reports(args []string) error {
	fs := flag.NewFlagSet("reports", flag.ContinueOnError)
	target := fs.String("url", "", "the relay's /-/report URL")
	c := fs.Int("c", 10, "reports sent at once")
	size := fs.Int("size", 8<<20, "bytes per report")
	timeout := fs.Duration("timeout", 120*time.Second, "per request")
	keyFile := fs.String("tree-key", "", "sign the reports with this tree key (relayd keygen --tree)")
	var hdr headers
	fs.Var(&hdr, "H", "extra request header 'Key: Value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := loopbackURL(*target); err != nil {
		return err
	}
	var signer *treeauth.Signer
	if *keyFile != "" {
		key, err := treeauth.LoadKey(*keyFile)
		if err != nil {
			return err
		}
		signer = &treeauth.Signer{Key: key, Group: reportGroup, Node: reportNode}
	}
	body := reportBody(*size)
	hc := &http.Client{Timeout: *timeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: *c}}
	var mu sync.Mutex
	statuses := map[int]int{}
	errs := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	t0 := time.Now()
	for range *c {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, *target, bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
				for _, h := range hdr {
					k, v, _ := strings.Cut(h, ":")
					req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
				}
				if signer != nil {
					signer.Sign(req, "/-/report", body)
				}
			}
			<-start
			var resp *http.Response
			if err == nil {
				resp, err = hc.Do(req)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				fmt.Fprintln(os.Stderr, "report:", err)
				return
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			statuses[resp.StatusCode]++
		})
	}
	close(start)
	wg.Wait()
	fmt.Printf("REPORTS sent=%d bytes=%d statuses=%s errors=%d secs=%.2f\n", *c, len(body), tally(statuses), errs, time.Since(t0).Seconds())
	return nil
}

func tally(m map[int]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// raiseNofile raises the soft RLIMIT_NOFILE to the hard limit and says
// whether n descriptors fit under it.
func raiseNofile(n uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Max < n {
		return fmt.Errorf("%d descriptors needed, hard RLIMIT_NOFILE is %d: open fewer streams per process", n, rl.Max)
	}
	rl.Cur = rl.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
}

// untilSignal returns when SIGTERM or SIGINT arrives, or after max.
func untilSignal(max time.Duration) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(ch)
	select {
	case <-ch:
	case <-time.After(max):
	}
}

// prober GETs url on a new connection every interval and keeps the
// latencies (a failure counts as timeout), each marked with whether the
// streams were all open and held by then (held).
type prober struct {
	url      string
	timeout  time.Duration
	held     *atomic.Bool
	mu       sync.Mutex
	lat      []probeSample
	firstErr string
}

type probeSample struct {
	d          time.Duration
	failed     bool
	duringHold bool
}

func (p *prober) run(stop <-chan struct{}, every time.Duration) {
	hc := &http.Client{Timeout: p.timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		hold := p.held.Load()
		t0 := time.Now()
		err := getOK(hc, p.url)
		d := time.Since(t0)
		p.mu.Lock()
		if err != nil {
			d = max(d, p.timeout)
			if p.firstErr == "" {
				p.firstErr = err.Error()
			}
		}
		p.lat = append(p.lat, probeSample{d: d, failed: err != nil, duringHold: hold})
		p.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func getOK(hc *http.Client, u string) error {
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// summary is "NAME_p50_ms=… NAME_p99_ms=… NAME_max_ms=… NAME_fail=…
// NAME_probes=…" over every probe, then the same with NAME_hold_ over the
// probes made while the streams were held.
func (p *prober) summary(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var all, hold []probeSample
	for _, x := range p.lat {
		all = append(all, x)
		if x.duringHold {
			hold = append(hold, x)
		}
	}
	return stats(name, all) + " " + stats(name+"_hold", hold)
}

func stats(name string, xs []probeSample) string {
	if len(xs) == 0 {
		return fmt.Sprintf("%s_probes=0", name)
	}
	l := make([]time.Duration, len(xs))
	failed := 0
	for i, x := range xs {
		l[i] = x.d
		if x.failed {
			failed++
		}
	}
	slices.Sort(l)
	pct := func(q float64) float64 {
		return float64(l[min(len(l)-1, int(q*float64(len(l))))].Microseconds()) / 1000
	}
	return fmt.Sprintf("%s_p50_ms=%.1f %s_p99_ms=%.1f %s_max_ms=%.1f %s_fail=%d %s_probes=%d",
		name, pct(0.5), name, pct(0.99), name, pct(1), name, failed, name, len(l))
}

// openStream dials from src, asks for /-/events and reads the status
// line; the connection is returned open (never read further) on 200.
func openStream(host, src string, timeout time.Duration) (net.Conn, int, error) {
	d := net.Dialer{Timeout: timeout}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		return nil, 0, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(conn, "GET /-/events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nUser-Agent: hostile-bench\r\n\r\n", host); err != nil {
		conn.Close()
		return nil, 0, err
	}
	line, err := bufio.NewReaderSize(conn, 256).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	f := strings.Fields(line) // HTTP/1.1 200 OK
	code := 0
	if len(f) >= 2 {
		code, _ = strconv.Atoi(f[1])
	}
	_ = conn.SetDeadline(time.Time{})
	if code != http.StatusOK {
		conn.Close()
		return nil, code, nil
	}
	return conn, code, nil
}

func streams(args []string) error {
	fs := flag.NewFlagSet("streams", flag.ContinueOnError)
	target := fs.String("url", "", "the relay's content URL")
	n := fs.Int("n", 15000, "streams to open")
	from := fs.String("from", "127.0.0.2,127.0.0.3,127.0.0.4", "source addresses, round-robin")
	c := fs.Int("c", 512, "streams being opened at once")
	dialTimeout := fs.Duration("dial-timeout", 2*time.Second, "per stream: connect and status line")
	maxHold := fs.Duration("max-hold", 10*time.Minute, "hold at most this long without a signal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tu, err := loopbackURL(*target)
	if err != nil {
		return err
	}
	srcs := strings.Split(*from, ",")
	for _, s := range srcs {
		if ip := net.ParseIP(s); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("-from %s: loopback addresses only", s)
		}
	}
	if err := raiseNofile(uint64(*n + *c + 64)); err != nil {
		return err
	}
	var ok, refused, other, dialErrs atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	var firstErr atomic.Value
	var next atomic.Int64
	t0 := time.Now()
	var wg sync.WaitGroup
	for range *c {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				conn, code, err := openStream(tu.Host, srcs[i%int64(len(srcs))], *dialTimeout)
				switch {
				case err != nil:
					dialErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case code == http.StatusOK:
					ok.Add(1)
					mu.Lock()
					conns = append(conns, conn)
					mu.Unlock()
				case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("OPENED tried=%d ok=%d refused=%d other=%d dial_errors=%d open_secs=%.1f\n",
		*n, ok.Load(), refused.Load(), other.Load(), dialErrs.Load(), time.Since(t0).Seconds())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first stream error:", e)
	}
	untilSignal(*maxHold) // the streams are held, never read
	for _, conn := range conns {
		conn.Close()
	}
	return nil
}

func probe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	target := fs.String("url", "", "the relay's content URL (probed at /-/healthz)")
	admin := fs.String("admin", "", "the relay's admin URL (probed at /v1/status)")
	every := fs.Duration("probe", 50*time.Millisecond, "probe interval")
	probeTimeout := fs.Duration("probe-timeout", 2*time.Second, "a slower probe is a failure")
	maxRun := fs.Duration("max", 10*time.Minute, "probe at most this long without a signal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, u := range []string{*target, *admin} {
		if _, err := loopbackURL(u); err != nil {
			return err
		}
	}
	stop := make(chan struct{})
	var held atomic.Bool
	health := &prober{url: *target + "/-/healthz", timeout: *probeTimeout, held: &held}
	status := &prober{url: *admin + "/v1/status", timeout: *probeTimeout, held: &held}
	var wg sync.WaitGroup
	wg.Go(func() { health.run(stop, *every) })
	wg.Go(func() { status.run(stop, *every) })
	// SIGUSR1: every stream is open now; what follows is the hold.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		held.Store(true)
	}()
	untilSignal(*maxRun)
	close(stop)
	wg.Wait()
	fmt.Printf("PROBE %s %s\n", health.summary("healthz"), status.summary("status"))
	if health.firstErr != "" || status.firstErr != "" {
		fmt.Fprintf(os.Stderr, "first probe errors: healthz %q, status %q\n", health.firstErr, status.firstErr)
	}
	return nil
}

func late(args []string) error {
	fs := flag.NewFlagSet("late", flag.ContinueOnError)
	target := fs.String("url", "", "the relay's content URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tu, err := loopbackURL(*target)
	if err != nil {
		return err
	}
	conn, code, err := openStream(tu.Host, "127.0.0.1", 2*time.Second)
	if conn != nil {
		conn.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "late stream:", err)
	}
	fmt.Printf("LATE status=%d\n", code)
	return nil
}
