package proctest

import (
	"errors"
	"testing"
	"time"
)

// StopErr, returned by a condition, ends Eventually (and Consistently)
// at once: the condition can no longer come true (the process exited).
type StopErr struct{ Err error }

func (e StopErr) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e StopErr) Unwrap() error { return e.Err }

// Eventually calls f every 20ms until it returns nil, failing the test
// after timeout (or at once on a StopErr) with the last error.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for i := 0; ; i++ {
		if err = f(); err == nil {
			return
		}
		var se StopErr
		if errors.As(err, &se) {
			t.Fatalf("waiting for %s: %v", what, se.Err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still failing after %v (%d tries): %v", what, timeout, i+1, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Consistently calls f every 20ms for d and fails the test at the first
// error: a condition that must hold throughout, not just eventually.
func Consistently(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	polls := 0
	for {
		if err := f(); err != nil {
			var se StopErr
			if errors.As(err, &se) {
				err = se.Err
			}
			t.Fatalf("%s stopped holding after %d checks: %v", what, polls, err)
		}
		polls++
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
