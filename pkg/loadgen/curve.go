// The sync curve: how the agents' requests spread after a publish.
package loadgen

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxLogged bounds the request times a run keeps (8 bytes each).
const maxLogged = 4 << 20

// curveStep is the width of one bar of the curve.
const curveStep = 100 * time.Millisecond

// maxCurveSteps bounds the bars printed for one generation (a minute).
const maxCurveSteps = 600

// reqLog keeps when each catalog and object request started.
type reqLog struct {
	mu sync.Mutex
	at []int64 // unix ns, in the order requests started
}

func (l *reqLog) add(t time.Time) {
	l.mu.Lock()
	if len(l.at) < maxLogged {
		l.at = append(l.at, t.UnixNano())
	}
	l.mu.Unlock()
}

// curve counts the requests that started in each curveStep from `from`
// on, up to `to` (at most maxCurveSteps), and the last one's offset.
func (l *reqLog) curve(from, to time.Time) (bars []int, last time.Duration) {
	n := min(int(to.Sub(from)/curveStep)+1, maxCurveSteps)
	if n <= 0 {
		return nil, 0
	}
	bars = make([]int, n)
	l.mu.Lock()
	defer l.mu.Unlock()
	f := from.UnixNano()
	for _, t := range l.at {
		if t < f {
			continue
		}
		i := int(time.Duration(t-f) / curveStep)
		if i >= n {
			continue
		}
		bars[i]++
		last = max(last, time.Duration(t-f))
	}
	return bars, last
}

// printCurve writes generation g's curve: requests per 100 ms from its
// first notification to its last agent updated, and returns the busiest
// bar and the offset of the last request in that window.
func printCurve(w io.Writer, g uint64, l *reqLog, t *genTimes) (peak int, last time.Duration) {
	if l == nil || t.firstNotified.IsZero() {
		return 0, 0
	}
	end := t.lastNotified
	if t.lastUpdated.After(end) {
		end = t.lastUpdated
	}
	bars, last := l.curve(t.firstNotified, end)
	var b strings.Builder
	for i, n := range bars {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(n))
		peak = max(peak, n)
	}
	fmt.Fprintf(w, "generation %d: requests per 100 ms after the first notification (peak %d, last at %d ms): %s\n",
		g, peak, last.Milliseconds(), b.String())
	return peak, last
}
