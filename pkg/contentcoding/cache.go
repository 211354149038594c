package contentcoding

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/store"
	"github.com/relayd/relayd/pkg/wire"
)

// Config bounds the derived cache.
type Config struct {
	// Dir holds the encoded forms (created 0700). Required.
	Dir string
	// MaxBytes is the byte budget of Dir; the least recently used forms
	// are removed to stay under it, and a form over a quarter of it is not
	// kept. Default 1 GiB.
	MaxBytes int64
	// MaxDictionary is the largest old version used as a dictionary
	// (bytes, held in memory while a delta is built). Default 128 MiB.
	MaxDictionary int64
	// MaxDeltaObject is the largest object a delta is built for (bytes).
	// Default 128 MiB.
	MaxDeltaObject int64
	// Builds is how many forms are built at once (each takes a core and,
	// for a delta, up to MaxDictionary + the window in memory). Default 1.
	Builds int
}

// DefaultConfig is the configuration with every default, in dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, MaxBytes: 1 << 30, MaxDictionary: DefaultMaxDictionary, MaxDeltaObject: 128 << 20, Builds: 1}
}

// Blobs is where the identity bytes come from: *store.Store.
type Blobs interface {
	// OpenBlob opens a stored, verified blob; store.ErrNotFound if absent.
	OpenBlob(d digest.Digest) (*store.Reader, error)
}

var _ Blobs = (*store.Store)(nil)

// Form is an encoded form of a blob, open for reading; the caller closes
// File.
type Form struct {
	// Coding is wire.CodingZstd or wire.CodingDcz.
	Coding string
	// Dict is the dictionary of a dcz form.
	Dict digest.Digest
	// Size is the encoded length.
	Size int64
	File *os.File
}

// maxSkips bounds the remembered "not worth encoding" decisions; the set
// is cleared when full.
const maxSkips = 1 << 16

// tmpPrefix starts the names of forms being written.
const tmpPrefix = "tmp-"

// Cache is the derived-form cache.
type Cache struct {
	cfg    Config
	blobs  Blobs
	log    zerolog.Logger
	flight singleflight.Group
	builds chan struct{}

	mu    sync.Mutex
	files map[string]*list.Element // name -> element of lru (a *file)
	lru   *list.List               // front: most recently used
	used  int64
	skip  map[string]struct{} // forms not worth having
	stats Stats
}

// Stats counts what the cache did.
type Stats struct {
	Files, Bytes int64
	// Built counts forms written; Skipped decisions not to encode
	// (incompressible, delta not worth it, over a limit); Busy requests
	// answered without a build because every build slot was taken.
	Built, Skipped, Busy int64
}

type file struct {
	name string
	size int64
}

// Open opens (creating) the cache directory, removes forms left half
// written by a crash and evicts over the budget.
func Open(cfg Config, blobs Blobs, log zerolog.Logger) (*Cache, error) {
	def := DefaultConfig(cfg.Dir)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = def.MaxBytes
	}
	if cfg.MaxDictionary <= 0 {
		cfg.MaxDictionary = def.MaxDictionary
	}
	if cfg.MaxDeltaObject <= 0 {
		cfg.MaxDeltaObject = def.MaxDeltaObject
	}
	if cfg.Builds <= 0 {
		cfg.Builds = def.Builds
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("contentcoding: %w", err)
	}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("contentcoding: %w", err)
	}
	c := &Cache{cfg: cfg, blobs: blobs, log: log, builds: make(chan struct{}, cfg.Builds),
		files: map[string]*list.Element{}, lru: list.New(), skip: map[string]struct{}{}}
	type aged struct {
		f     file
		mtime int64
	}
	var found []aged
	for _, e := range ents {
		path := filepath.Join(cfg.Dir, e.Name())
		info, err := e.Info()
		if err != nil || !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tmpPrefix) || !validName(e.Name()) {
			_ = os.Remove(path) // a crash's leftover, or not ours
			continue
		}
		found = append(found, aged{file{e.Name(), info.Size()}, info.ModTime().UnixNano()})
	}
	// Oldest first, each pushed to the front: the newest ends in front.
	slices.SortFunc(found, func(a, b aged) int { return cmp.Compare(a.mtime, b.mtime) })
	c.mu.Lock()
	for _, a := range found {
		c.add(a.f)
	}
	c.evict(0)
	c.mu.Unlock()
	return c, nil
}

// zstdName and deltaName are the file names of forms.
func zstdName(d digest.Digest) string        { return d.Hex() + ".zst" }
func deltaName(d, dict digest.Digest) string { return d.Hex() + "." + dict.Hex() + ".dcz" }
func validName(name string) bool {
	return strings.HasSuffix(name, ".zst") || strings.HasSuffix(name, ".dcz")
}
func (c *Cache) path(name string) string { return filepath.Join(c.cfg.Dir, name) }

// add records a form. Called with c.mu held.
func (c *Cache) add(f file) {
	if el, ok := c.files[f.name]; ok {
		c.used -= el.Value.(*file).size
		c.lru.Remove(el)
	}
	c.files[f.name] = c.lru.PushFront(&f)
	c.used += f.size
}

// evict removes the least recently used forms until need more bytes fit
// the budget. Called with c.mu held. A form being read stays readable
// through its open descriptor.
func (c *Cache) evict(need int64) {
	for c.used+need > c.cfg.MaxBytes && c.lru.Len() > 0 {
		el := c.lru.Back()
		f := el.Value.(*file)
		c.lru.Remove(el)
		delete(c.files, f.name)
		c.used -= f.size
		if err := os.Remove(c.path(f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn().Err(err).Str("form", f.name).Msg("contentcoding: evict")
		}
	}
}

// Stats returns the counters and the cache's current size.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Files, s.Bytes = int64(c.lru.Len()), c.used
	return s
}

// Get returns the best form of blob d the request allows: a dcz delta
// against a.Dict, else zstd, else nil (send identity). A form that does
// not exist yet is built now, by one caller for all, when a build slot is
// free; otherwise the next best existing form is returned.
func (c *Cache) Get(d digest.Digest, a Accept) (*Form, error) {
	if a.Dcz && a.Dict != d && !a.Dict.IsZero() {
		f, err := c.form(deltaName(d, a.Dict), false, func(tmp *os.File) (bool, error) { return c.buildDelta(tmp, d, a.Dict) })
		if f != nil || err != nil {
			if f != nil {
				f.Coding, f.Dict = wire.CodingDcz, a.Dict
			}
			return f, err
		}
	}
	if !a.Zstd {
		return nil, nil
	}
	f, err := c.form(zstdName(d), false, func(tmp *os.File) (bool, error) { return c.buildZstd(tmp, d) })
	if f != nil {
		f.Coding = wire.CodingZstd
	}
	return f, err
}

// Prebuild builds the delta of blob d against blob dict ahead of the
// requests for it (a mirror's changed paths when a generation goes live),
// waiting for a build slot; nothing when it exists or is not worth it.
func (c *Cache) Prebuild(d, dict digest.Digest) error {
	f, err := c.form(deltaName(d, dict), true, func(tmp *os.File) (bool, error) { return c.buildDelta(tmp, d, dict) })
	if f != nil {
		_ = f.File.Close()
	}
	return err
}

// form opens the form name, building it with build if it is neither there
// nor known to be not worth it. build writes tmp and says whether the form
// is worth keeping; wait says to wait for a build slot rather than give up
// when all are busy. nil, nil: no such form.
func (c *Cache) form(name string, wait bool, build func(tmp *os.File) (bool, error)) (*Form, error) {
	if f := c.open(name); f != nil {
		return f, nil
	}
	c.mu.Lock()
	_, skipped := c.skip[name]
	c.mu.Unlock()
	if skipped {
		return nil, nil
	}
	_, err, _ := c.flight.Do(name, func() (any, error) {
		if f := c.open(name); f != nil { // built while we waited for the flight
			_ = f.File.Close()
			return nil, nil
		}
		if wait {
			c.builds <- struct{}{}
			defer func() { <-c.builds }()
		} else {
			select {
			case c.builds <- struct{}{}:
				defer func() { <-c.builds }()
			default:
				c.count(func(s *Stats) { s.Busy++ })
				return nil, nil
			}
		}
		return nil, c.build(name, build)
	})
	if err != nil {
		return nil, err
	}
	return c.open(name), nil
}

// open opens a cached form and marks it used; nil if it is not there.
func (c *Cache) open(name string) *Form {
	c.mu.Lock()
	el, ok := c.files[name]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	f, err := os.Open(c.path(name))
	if err != nil {
		return nil // evicted meanwhile
	}
	return &Form{Size: el.Value.(*file).size, File: f}
}

func (c *Cache) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// build writes a form to a temp file, fsyncs it and renames it into place,
// or records that it is not worth having.
func (c *Cache) build(name string, build func(tmp *os.File) (bool, error)) error {
	tmp, err := os.CreateTemp(c.cfg.Dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("contentcoding: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name()) // a no-op once renamed
	}()
	worth, err := build(tmp)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("contentcoding: build %s: %w", name, err)
	}
	var size int64
	if worth && err == nil {
		size, err = tmp.Seek(0, io.SeekCurrent)
		if err == nil {
			err = tmp.Sync()
		}
		if err != nil {
			return fmt.Errorf("contentcoding: build %s: %w", name, err)
		}
	}
	if err != nil { // a blob is missing: nothing to remember
		return nil
	}
	if !worth || size > c.cfg.MaxBytes/4 {
		c.mu.Lock()
		if len(c.skip) >= maxSkips {
			clear(c.skip)
		}
		c.skip[name] = struct{}{}
		c.stats.Skipped++
		c.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(size)
	if err := os.Rename(tmp.Name(), c.path(name)); err != nil {
		return fmt.Errorf("contentcoding: build %s: %w", name, err)
	}
	syncDir(c.cfg.Dir)
	c.add(file{name, size})
	c.stats.Built++
	return nil
}

// syncDir makes a rename durable; an error only weakens durability, which
// a derived form does not need for correctness (it is rebuilt if lost).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
