package tufclient

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/testlog"
)

// memoClient is a client of f's repository sharing m, keeping nothing on
// disk (as relayd loadgen's agents).
func (f *fixture) memoClient(t *testing.T, m *Memo) *Client {
	t.Helper()
	c, err := New(f.repo.files["1.root.json"], Options{Now: f.clk.Now, Log: zerolog.New(testlog.New(t)), Memo: m})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMemoSharesVerificationNotRequests: the second client of a memo
// makes the same requests as the first, takes the first one's verified
// set, and a new generation is taken from the memo the same way.
func TestMemoSharesVerificationNotRequests(t *testing.T) {
	f := newFixture(t)
	m := NewMemo()
	a, b := f.memoClient(t, m), f.memoClient(t, m)
	if a.root != b.root || b.rootNow.Load() != b.root {
		t.Error("the memo's second client parsed and verified the trusted root again, or does not hold it")
	}
	ctx := context.Background()
	sta, err := a.Update(ctx, f.srv)
	if err != nil {
		t.Fatal(err)
	}
	reqA := f.srv.requests()
	stb, err := b.Update(ctx, f.srv)
	if err != nil {
		t.Fatal(err)
	}
	if reqB := f.srv.requests(); !slices.Equal(reqA, reqB) {
		t.Errorf("the memo's second client asked for %v, the first for %v", reqB, reqA)
	}
	if got := m.Stats(); got != (MemoStats{Hits: 1, Misses: 1}) {
		t.Errorf("stats %+v, want one hit and one miss", got)
	}
	if stb.Catalog != sta.Catalog {
		t.Error("the second client verified its own catalog")
	}
	checkCatalog(t, stb.Catalog, f.want)
	// A new generation: the same again, from each client's own state.
	f.addObj(f.repo.binOf("rest", "x"), "x", "changed")
	f.repo.publish()
	f.srv.sync(f.repo)
	for _, c := range []*Client{a, b} {
		st, err := c.Update(ctx, f.srv)
		if err != nil || st.Catalog.Generation != 2 {
			t.Fatalf("generation 2: %v %v", st, err)
		}
		checkCatalog(t, st.Catalog, f.want)
	}
	if got := m.Stats(); got != (MemoStats{Hits: 2, Misses: 2}) {
		t.Errorf("stats %+v, want two hits and two misses", got)
	}
	// Unchanged: one request each, nothing looked up.
	f.srv.requests()
	if _, err := b.Update(ctx, f.srv); err != nil {
		t.Fatal(err)
	}
	if reqs := f.srv.requests(); !slices.Equal(reqs, []string{"timestamp.json"}) {
		t.Errorf("no change asked for %v", reqs)
	}
}

// TestMemoDifferentBytesVerified: a client fed other bytes than the
// memo's does not take the memo's result: a forged role fails for it as
// it would without a memo, and expiry is judged on its own clock.
func TestMemoDifferentBytesVerified(t *testing.T) {
	f := newFixture(t)
	m := NewMemo()
	ctx := context.Background()
	if _, err := f.memoClient(t, m).Update(ctx, f.srv); err != nil {
		t.Fatal(err)
	}
	c := f.memoClient(t, m)
	good := f.srv.files["1.security.json"]
	f.srv.set("1.security.json", forge[metadata.TargetsType](t, good, nil, newKey(t)))
	_, err := c.Update(ctx, f.srv)
	if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) && !errors.Is(err, &metadata.ErrLengthOrHashMismatch{}) {
		t.Fatalf("a forged role with a memo: %v, want it refused", err)
	}
	f.srv.set("1.security.json", good)
	f.clk.Advance(48 * time.Hour) // past the timestamp's expiry
	if _, err := f.memoClient(t, m).Update(ctx, f.srv); !errors.Is(err, ErrExpired) {
		t.Fatalf("an expired generation with a memo: %v, want ErrExpired", err)
	}
	if got := m.Stats(); got.Hits != 1 {
		t.Errorf("stats %+v: want the expired generation found in the memo (and refused)", got)
	}
}

// TestMemoConcurrent: clients updating at once from the same state wait
// for the one verifying, then make their own requests: one verification.
func TestMemoConcurrent(t *testing.T) {
	f := newFixture(t)
	m := NewMemo()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		c := f.memoClient(t, m)
		wg.Go(func() { _, errs[i] = c.Update(context.Background(), f.srv) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Stats(); got != (MemoStats{Hits: 7, Misses: 1}) {
		t.Errorf("stats %+v, want 7 hits and 1 miss", got)
	}
	if n := len(f.srv.requests()); n%8 != 0 {
		t.Errorf("%d requests for 8 clients", n)
	}
}
