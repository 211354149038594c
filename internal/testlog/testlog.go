// Package testlog sends the log lines of nodes a test runs to the test's
// log, and stops at the end of the test: memberlist and other goroutines
// may still log while they wind down, and a testing.T must not be used
// after its test has ended.
package testlog

import (
	"bytes"
	"sync"
	"testing"
)

// Writer is an io.Writer for a zerolog.Logger in a test.
type Writer struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

// New returns a Writer for t that goes quiet when the test's cleanups
// run (register it before the cleanups that stop nodes, so it closes
// after them).
func New(t testing.TB) *Writer {
	w := &Writer{t: t}
	t.Cleanup(w.close)
	return w
}

// Write logs p (one log line) to the test.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *Writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
