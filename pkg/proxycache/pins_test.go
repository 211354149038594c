package proxycache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/store"
)

// Pin, List and Remove over the store: pinned objects are listed as
// pinned, missing keys are reported, unpinning and removing drop the pin.
func TestPinListRemove(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	for i := range 3 {
		f.up.set(fmt.Sprintf("/pkg/%d.deb", i), &upObject{body: randomBytes(1000+i, uint64(i))})
		mustGet(t, f.cache, fmt.Sprintf("pkg/%d.deb", i), randomBytes(1000+i, uint64(i)), "MISS")
	}
	stored(t, f.store, "pkg/0.deb", "pkg/1.deb", "pkg/2.deb")
	res, err := Pin(f.store, []string{"pkg/0.deb", "pkg/2.deb", "pkg/none.deb"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Pinned, []string{"pkg/0.deb", "pkg/2.deb"}) || !slices.Equal(res.Missing, []string{"pkg/none.deb"}) {
		t.Fatalf("pin: %+v", res)
	}
	page, next, err := List(f.store, "pkg/", "", 2, false)
	if err != nil || len(page) != 2 || next != "pkg/1.deb" || !page[0].Pinned || page[1].Pinned {
		t.Fatalf("first page %+v next %q %v", page, next, err)
	}
	page, next, err = List(f.store, "pkg/", next, 2, false)
	if err != nil || len(page) != 1 || page[0].Path != "pkg/2.deb" || next != "" {
		t.Fatalf("second page %+v next %q %v", page, next, err)
	}
	if page, _, _ := List(f.store, "", "", 0, true); len(page) != 2 {
		t.Fatalf("pinned only: %+v", page)
	}
	for _, p := range page {
		if strings.HasPrefix(p.Path, "-/") {
			t.Fatalf("relayd's own key listed: %s", p.Path)
		}
	}
	if res, err := Pin(f.store, []string{"pkg/0.deb"}, true); err != nil || !slices.Equal(res.Unpinned, []string{"pkg/0.deb"}) {
		t.Fatalf("unpin: %+v %v", res, err)
	}
	if err := Remove(f.store, "pkg/2.deb"); err != nil {
		t.Fatal(err)
	}
	if len(Pinned(f.store)) != 0 {
		t.Fatalf("pins left after unpin and remove: %v", Pinned(f.store))
	}
	if err := Remove(f.store, "pkg/2.deb"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
}

// A prefetch job fills every key once, counts failures with their keys,
// refuses a second job while one runs, and refuses empty and oversized
// jobs.
func TestPrefetcher(t *testing.T) {
	t.Parallel()
	f := newFixture(t, DefaultConfig(), 0)
	gate := make(chan struct{})
	f.up.set("/a", &upObject{body: randomBytes(5000, 1), gate: gate, gateAt: 10})
	f.up.set("/b", &upObject{body: randomBytes(3000, 2)})
	p := NewPrefetcher(f.cache, zerolog.New(zerolog.NewTestWriter(t)), f.clock)
	if _, err := p.Start(context.Background(), nil); !errors.Is(err, ErrNothingToPrefetch) {
		t.Fatalf("empty job: %v", err)
	}
	if _, err := p.Start(context.Background(), make([]string, MaxPrefetch+1)); !errors.Is(err, ErrTooManyKeys) {
		t.Fatalf("oversized job: %v", err)
	}
	st, err := p.Start(context.Background(), []string{"a", "b", "missing"})
	if err != nil || !st.Running || st.Queued != 3 {
		t.Fatalf("start: %+v %v", st, err)
	}
	if _, err := p.Start(context.Background(), []string{"b"}); !errors.Is(err, ErrPrefetchBusy) {
		t.Fatalf("second job while one runs: %v", err)
	}
	close(gate)
	eventually(t, 10*time.Second, func() bool { return !p.Status().Running })
	st = p.Status()
	if st.Done != 2 || st.Failed != 1 || len(st.Errors) != 1 || !strings.HasPrefix(st.Errors[0], "missing: ") || st.Finished.IsZero() {
		t.Fatalf("finished job: %+v", st)
	}
	stored(t, f.store, "a", "b")
	for _, k := range []string{"a", "b"} {
		if n := f.up.count("/" + k); n != 1 {
			t.Fatalf("%s fetched %d times", k, n)
		}
	}
}

// stored waits until the fills of keys are committed to the store (the
// commit follows the last byte the reader got).
func stored(t *testing.T, st *store.Store, keys ...string) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		for _, k := range keys {
			if _, err := st.Get(k); err != nil {
				return false
			}
		}
		return true
	})
}
