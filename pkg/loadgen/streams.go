// Streams only: thousands of bare push streams from one process, to
// measure what a relay spends per idle stream and how fast it fans out,
// without the agents' syncs.
package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/relayd/relayd/pkg/events"
	"github.com/relayd/relayd/pkg/wire"
)

// StreamOptions describe a streams-only run (RunStreams).
type StreamOptions struct {
	// Relays are the relays' base URLs; stream i goes to Relays[i%len].
	Relays []string
	// Streams is how many streams are held, 1 to MaxAgents.
	Streams int
	// Duration bounds the run, up to MaxDuration.
	Duration time.Duration
	// Rate is how many streams are opened per second.
	Rate float64
	// IDPrefix starts each stream's agent id; a number follows.
	IDPrefix string
	// ConnectTimeout bounds one dial and response head.
	ConnectTimeout time.Duration
	// LocalAddr, if set, is the IP streams are opened from (127.0.0.2,
	// …: a relay bounds the streams of one address).
	LocalAddr net.IP
	// StopAfterUpdates ends the run once every stream was told of this
	// many generations newer than the first one (0: run for Duration).
	StopAfterUpdates int
}

// streamHeadMax bounds the response head a relay sends on a stream.
const streamHeadMax = 16 << 10

// RunStreams holds o.Streams event streams (o.Rate a second), each from
// its own agent id, reconnecting one that ends (after a second or two),
// and records when each stream is told of each catalog generation; when
// ctx ends, o.Duration has passed or (StopAfterUpdates) every stream saw
// enough generations, it closes them all and writes the summary (the
// LOADGEN line as Run's, syncs counting streams that were notified).
func RunStreams(ctx context.Context, o StreamOptions, stdout io.Writer) error {
	if o.Streams < 1 || o.Streams > MaxAgents || len(o.Relays) == 0 || o.Rate <= 0 {
		return fmt.Errorf("loadgen: streams %d (want 1 to %d), %d relays, rate %g", o.Streams, MaxAgents, len(o.Relays), o.Rate)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	run := &loadRun{gens: map[uint64]*genTimes{}, agentGen: make([]uint64, o.Streams), agentSync: make([]uint64, o.Streams)}
	start := time.Now()
	fmt.Fprintf(stdout, "loadgen: %d bare streams against %s for %s\n", o.Streams, strings.Join(o.Relays, ","), o.Duration)
	connected := func() {
		fmt.Fprintf(stdout, "all %d streams connected after %.2fs\n", o.Streams, time.Since(start).Seconds())
	}
	var stopOnce sync.Once
	notified := func(i int, g uint64) {
		run.notified(i, g, o.Streams, connected)
		run.ok.Add(1)
		run.synced(i, g)
		if o.StopAfterUpdates > 0 && run.updatedAll(o.Streams) >= o.StopAfterUpdates {
			stopOnce.Do(cancel)
		}
	}
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
	defer tick.Stop()
	counts := map[string]int64{}
start:
	for i := range o.Streams {
		relay := o.Relays[i%len(o.Relays)]
		counts[hostOf(relay)]++
		run.streams++
		id := fmt.Sprintf("%s%05d", o.IDPrefix, i)
		wg.Go(func() { holdStream(ctx, relay, id, o, func(g uint64) { notified(i, g) }, &run.failed) })
		select {
		case <-ctx.Done():
			break start
		case <-tick.C:
		}
	}
	wg.Wait()
	lo := Options{Agents: o.Streams, Watch: true}
	return printLoad(stdout, lo, run, nil, nil, counts, time.Since(start))
}

func hostOf(base string) string {
	if u, err := url.Parse(base); err == nil {
		return u.Host
	}
	return base
}

// holdStream keeps one stream to relay open until ctx ends, calling
// notify with every catalog generation announced; a stream that fails or
// ends is counted in failed and opened again after 1–2 s.
func holdStream(ctx context.Context, relay, id string, o StreamOptions, notify func(uint64), failed interface{ Add(int64) int64 }) {
	d := net.Dialer{Timeout: o.ConnectTimeout}
	if o.LocalAddr != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.LocalAddr}
	}
	for ctx.Err() == nil {
		err := readStream(ctx, &d, relay, id, o.ConnectTimeout, notify)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failed.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second + rand.N(time.Second)):
		}
	}
}

// readStream opens one stream and reads it to its end.
func readStream(ctx context.Context, d *net.Dialer, relay, id string, timeout time.Duration, notify func(uint64)) error {
	u, err := url.Parse(relay)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("loadgen: streams-only takes http:// relays, got %q", relay)
	}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	req := "GET " + wire.EventsPath + "?" + wire.AgentParam + "=" + url.QueryEscape(id) + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\n" + wire.AgentHeader + ": " + id + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	head := &headLimit{r: conn, n: streamHeadMax}
	resp, err := http.ReadResponse(bufio.NewReaderSize(head, 1024), nil)
	if err != nil {
		return err
	}
	head.done = true
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadgen: stream: %s", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	r := events.NewReader(resp.Body)
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if ev.Kind != wire.KindCatalog {
			continue
		}
		if g, err := wire.ParseGeneration(ev.Data); err == nil {
			notify(g.Generation)
		}
	}
}

// headLimit fails a read once more than n bytes came before the
// response head was read (done): a relay that never ends its head.
type headLimit struct {
	r    io.Reader
	n    int64
	done bool
}

func (l *headLimit) Read(p []byte) (int, error) {
	if !l.done && l.n <= 0 {
		return 0, errors.New("loadgen: stream response head too long")
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
