package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"
)

// maxWarnKinds bounds the kinds of warning a run tells apart.
const maxWarnKinds = 64

// warnings counts the agents' warnings (a relay that failed, and why) by
// kind: the message, the operation and the error with its numbers
// blanked. It is the agents' log writer.
type warnings struct {
	mu sync.Mutex
	n  map[string]int64
}

var digits = regexp.MustCompile(`[0-9]+`)

func (w *warnings) Write(p []byte) (int, error) {
	var e struct {
		Message string `json:"message"`
		Op      string `json:"op"`
		Error   string `json:"error"`
	}
	kind := "unparsed warning"
	if json.Unmarshal(p, &e) == nil {
		kind = e.Message
		if e.Op != "" {
			kind += " (" + digits.ReplaceAllString(e.Op, "N") + ")"
		}
		if e.Error != "" {
			err := e.Error
			if len(err) > 160 {
				err = err[:160] + "…"
			}
			kind += ": " + digits.ReplaceAllString(err, "N")
		}
	}
	w.mu.Lock()
	if _, ok := w.n[kind]; !ok && len(w.n) >= maxWarnKinds {
		kind = "other"
	}
	w.n[kind]++
	w.mu.Unlock()
	return len(p), nil
}

// print writes the most frequent kinds, at most top.
func (w *warnings) print(out io.Writer, top int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	kinds := make([]string, 0, len(w.n))
	for k := range w.n {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return w.n[kinds[i]] > w.n[kinds[j]] })
	for i, k := range kinds {
		if i == top {
			break
		}
		fmt.Fprintf(out, "agent warnings: %d × %s\n", w.n[k], k)
	}
}
