package tufclient

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
)

// Sentinel errors. go-tuf's own errors (metadata.ErrUnsignedMetadata,
// ErrBadVersionNumber, ErrLengthOrHashMismatch, …) are wrapped too.
var (
	// ErrNotFound is wrapped by a Fetcher's error for a file its source does
	// not have (an HTTP 404). It ends the walk of the root chain.
	ErrNotFound = errors.New("tufclient: metadata file not found")
	// ErrExpired is wrapped by every error about expired metadata; the
	// error (an *ExpiredError) says which role and since when.
	ErrExpired = errors.New("tufclient: metadata expired")
	// ErrRollback: the source serves metadata older than what is trusted
	// (a timestamp, or a version a trusted snapshot or timestamp lists). A
	// parent that is behind does this too: the caller may try another.
	ErrRollback = errors.New("tufclient: metadata older than the trusted metadata")
)

// ExpiredError is the error for expired metadata: Role expired at Since.
type ExpiredError struct {
	Role  string
	Since time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("tufclient: metadata expired since %s (%s)", e.Since.UTC().Format(time.RFC3339), e.Role)
}

// Is makes errors.Is(err, ErrExpired) true.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// Fetcher gets metadata files from wherever the caller's sources are.
type Fetcher interface {
	// FetchMeta returns the whole file of the served name ("timestamp.json",
	// "3.snapshot.json", "7.root.json"), reading at most max bytes and
	// failing beyond. A file the source does not have is an error wrapping
	// ErrNotFound. Failover across sources is the implementation's.
	FetchMeta(ctx context.Context, name string, max int64) ([]byte, error)
}

// Limits on fetched metadata.
const (
	// DefaultMaxBytes is the default of Options.MaxBytes: 64 MiB.
	DefaultMaxBytes = 64 << 20
	// TimestampMaxBytes bounds timestamp.json (go-tuf's default): 16 KiB.
	TimestampMaxBytes = 16 << 10
	// RootMaxBytes bounds a root (go-tuf's default): 512,000 bytes.
	RootMaxBytes = 512000
	// MaxRootRotations is how many new roots one Update walks at most.
	MaxRootRotations = 256
	// MaxRoles bounds the delegated roles of one generation (bins included).
	MaxRoles = 1 << 16
	// MaxDepth is how deep delegations are loaded (targets is depth 0).
	MaxDepth = 32
	// maxVisit is how many roles the search for one target visits at most:
	// go-tuf's default MaxDelegations.
	maxVisit = 32
	// keepGenerations is how many generations' files Dir keeps.
	keepGenerations = 3
)

// Options configure a Client.
type Options struct {
	// Dir holds the verified metadata (created 0700). "" keeps nothing on
	// disk: the client then starts from the trusted root every time.
	Dir string
	// Now is the clock every expiry decision uses; nil is time.Now.
	Now func() time.Time
	// MaxBytes bounds a metadata file whose length the delegating
	// metadata does not give, and every one it gives (a snapshot key
	// cannot make a client read more). Metadata only; 0 is DefaultMaxBytes.
	MaxBytes int64
	// Log receives what the client decides (component "tufclient").
	Log zerolog.Logger
	// Memo, if set, is shared with other clients of the process that
	// trust the same root: byte-identical metadata is verified once for
	// all of them (see Memo). nil: every update verifies what it fetched.
	Memo *Memo
}

// State is one verified, complete generation.
type State struct {
	// Catalog is every target of every trusted role; its Generation is
	// the snapshot version.
	Catalog *catalog.Catalog
	// Timestamp is timestamp.json as served, the one matching Catalog.
	Timestamp []byte
	// TimestampVersion and RootVersion are the versions trusted.
	TimestampVersion, RootVersion int64
	// Expires is the earliest expiry in the trusted set.
	Expires time.Time
	// ExpiresRole is the role that expires at Expires.
	ExpiresRole string
	// Verified is when this state was last confirmed from a source.
	Verified time.Time
}

// Client is a TUF client with persistent trusted metadata. Update calls
// are serialized; Current and File are safe from any goroutine.
type Client struct {
	opt Options
	log zerolog.Logger

	mu sync.Mutex // serializes Update; guards the fields below
	// root is the newest trusted root.
	root    *metadata.Metadata[metadata.RootType]
	rootRaw []byte
	// tsFloor and snapFloor are the newest verified timestamp and
	// snapshot (the rollback floor); they may be newer than set's when an
	// update stopped before its generation was complete.
	tsFloor, snapFloor []byte
	// set is the last complete generation.
	set *trustedSet

	// pinned are the pinned generations verified (Pinned), oldest first.
	pinned []*pinnedGen

	cur atomic.Pointer[State]
	// rootNow is root, for readers that do not take mu (VerifyGates).
	rootNow atomic.Pointer[metadata.Metadata[metadata.RootType]]

	gatesMu sync.Mutex
	gates   *heldGates // the newest accepted gates, nil before any

	filesMu sync.RWMutex
	files   map[string][]byte // served name → raw: roots and the current set
}

// servedName is what a metadata file may be called (the contract's
// pattern for /-/tuf/ names).
var servedName = regexp.MustCompile(`^([1-9][0-9]{0,18}\.(root|snapshot|targets|[a-z0-9][a-z0-9-]{0,63})\.json|timestamp\.json)$`)

// roleName is what a delegated role may be called: it becomes part of a
// served name and of a file name in Dir.
var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// New returns a client that trusts trustedRoot (the repository's
// 1.root.json, or any later root the operator trusts) and whatever of
// Options.Dir verifies from it: newer roots, and the last complete
// generation, which Current then returns even if it expired (the caller
// checks State.Expires). Nothing is fetched.
func New(trustedRoot []byte, opt Options) (*Client, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	c := &Client{opt: opt, log: opt.Log.With().Str("component", "tufclient").Logger(), files: map[string][]byte{}}
	if err := c.load(trustedRoot); err != nil {
		return nil, err
	}
	return c, nil
}

// Current returns the newest verified state, nil before the first. It
// stays after a failed Update (expired, rolled back, unreachable), so a
// relay keeps serving what it holds.
func (c *Client) Current() *State { return c.cur.Load() }

// File returns a verified metadata file by served name: every trusted
// root, and the files of the last generations (Dir keeps three).
func (c *Client) File(name string) ([]byte, bool) {
	if !servedName.MatchString(name) {
		return nil, false
	}
	c.filesMu.RLock()
	b, ok := c.files[name]
	c.filesMu.RUnlock()
	if ok {
		return b, true
	}
	if name == "timestamp.json" {
		return nil, false
	}
	return c.readFile(name)
}

// setFiles records the files of the current generation, replacing the
// previous generation's (which stay readable from Dir).
func (c *Client) setFiles(gen map[string][]byte) {
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	for name := range c.files {
		if !isRoot(name) {
			delete(c.files, name)
		}
	}
	for name, b := range gen {
		c.files[name] = b
	}
}

// addRoot records a verified root.
func (c *Client) addRoot(version int64, raw []byte) {
	c.filesMu.Lock()
	c.files[rootFile(version)] = raw
	c.filesMu.Unlock()
}

func rootFile(v int64) string               { return fmt.Sprintf("%d.root.json", v) }
func versioned(v int64, role string) string { return fmt.Sprintf("%d.%s.json", v, role) }

func isRoot(name string) bool {
	return len(name) > len(".root.json") && name[len(name)-len(".root.json"):] == ".root.json"
}
