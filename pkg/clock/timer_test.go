package clock

import (
	"context"
	"testing"
	"time"
)

// A Fake's timers fire when Advance reaches them, not before; a stopped
// one never does; Reset moves one; Sleep returns when the time has come.
func TestFakeTimers(t *testing.T) {
	t.Parallel()
	f := NewFake(time.Unix(1000, 0))
	fired := make(chan string, 4)
	a := f.AfterFunc(10*time.Second, func() { fired <- "a" })
	b := f.AfterFunc(5*time.Second, func() { fired <- "b" })
	c := f.AfterFunc(20*time.Second, func() { fired <- "c" })
	if !b.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	c.Reset(time.Second)
	f.Advance(9 * time.Second)
	if got := <-fired; got != "c" {
		t.Fatalf("fired %q first, want the reset timer", got)
	}
	if f.Pending() != 1 {
		t.Fatalf("%d timers pending, want a's", f.Pending())
	}
	f.Advance(time.Second)
	if got := <-fired; got != "a" {
		t.Fatalf("fired %q, want a", got)
	}
	if a.Stop() || f.Pending() != 0 {
		t.Fatal("a fired timer still pending")
	}
	done := make(chan bool)
	go func() { done <- Sleep(context.Background(), f, time.Minute) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !f.BlockUntil(ctx, 1) {
		t.Fatal("Sleep armed no timer")
	}
	f.Advance(time.Minute)
	if !<-done {
		t.Fatal("Sleep reported an interruption")
	}
	select {
	case got := <-fired:
		t.Fatalf("stopped timer %q fired", got)
	default:
	}
}
