package proxycache

// Prefetch: warming the cache before a rollout, one job at a time, at
// whatever priority the caller's context gives its fills (the node makes
// it background priority, so agents' requests go first).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/clock"
)

// Limits of a prefetch job.
const (
	// MaxPrefetch is the most keys one job takes.
	MaxPrefetch = 100000
	// prefetchWorkers is how many of its fills run at once.
	prefetchWorkers = 4
	// maxPrefetchErrors is how many failures a job's status keeps.
	maxPrefetchErrors = 20
)

var (
	// ErrPrefetchBusy: a prefetch job is running; follow it.
	ErrPrefetchBusy = errors.New("proxycache: a prefetch is running")
	// ErrNothingToPrefetch: a job with no keys.
	ErrNothingToPrefetch = errors.New("proxycache: nothing to prefetch")
	// ErrTooManyKeys: a job with more than MaxPrefetch keys.
	ErrTooManyKeys = fmt.Errorf("proxycache: more than %d keys to prefetch", MaxPrefetch)
)

// PrefetchStatus is the state of the last prefetch job.
type PrefetchStatus = admindoc.PrefetchStatus

// Prefetcher runs prefetch jobs through a Cache, one at a time.
type Prefetcher struct {
	cache *Cache
	log   zerolog.Logger
	clk   clock.Clock

	mu     sync.Mutex
	status PrefetchStatus
}

// NewPrefetcher returns a Prefetcher filling c.
func NewPrefetcher(c *Cache, log zerolog.Logger, clk clock.Clock) *Prefetcher {
	return &Prefetcher{cache: c, log: log, clk: clk}
}

// Start starts a job that fetches every key through the cache and reads
// it to the end, so each fill completes; it returns at once with the
// job's first status (Status follows it). The fills run with ctx.
func (p *Prefetcher) Start(ctx context.Context, keys []string) (PrefetchStatus, error) {
	switch {
	case len(keys) == 0:
		return PrefetchStatus{}, ErrNothingToPrefetch
	case len(keys) > MaxPrefetch:
		return PrefetchStatus{}, ErrTooManyKeys
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status.Running {
		return PrefetchStatus{}, ErrPrefetchBusy
	}
	p.status = PrefetchStatus{Running: true, Queued: len(keys), Started: p.clk.Now()}
	go p.run(ctx, keys)
	return p.status, nil
}

// Status returns the state of the running or last job.
func (p *Prefetcher) Status() PrefetchStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status
	s.Errors = append([]string(nil), s.Errors...)
	return s
}

func (p *Prefetcher) run(ctx context.Context, keys []string) {
	g := new(errgroup.Group)
	g.SetLimit(prefetchWorkers)
	for _, key := range keys {
		g.Go(func() error {
			p.done(key, p.warm(ctx, key))
			return nil
		})
	}
	_ = g.Wait()
	p.mu.Lock()
	p.status.Running, p.status.Finished = false, p.clk.Now()
	s := p.status
	p.mu.Unlock()
	p.log.Info().Int("done", s.Done).Int("failed", s.Failed).Msg("prefetch finished")
}

// done counts one key of the job.
func (p *Prefetcher) done(key string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.status.Done++
		return
	}
	p.status.Failed++
	if len(p.status.Errors) < maxPrefetchErrors {
		p.status.Errors = append(p.status.Errors, key+": "+err.Error())
	}
}

// warm fetches key through the cache and reads it to the end, so the
// fill completes.
func (p *Prefetcher) warm(ctx context.Context, key string) error {
	obj, err := p.cache.Get(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	if obj.Status >= 400 {
		return fmt.Errorf("the upstream answers %d", obj.Status)
	}
	_, err = obj.Body.CopyTo(ctx, io.Discard, 0, -1)
	return err
}
