package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/digest"
)

// Sentinel errors.
var (
	// ErrMalformed: a catalog or target is not well formed or not safe
	// to use.
	ErrMalformed = errors.New("catalog: malformed")
	// ErrTooLarge: the file exceeds the limit it is read with (see Read).
	ErrTooLarge = errors.New("catalog: too large")
)

// Kinds of objects.
const (
	KindSecurity = "security"
	KindSoftware = "software"
	KindOther    = "other"
)

// Object is one published file.
type Object struct {
	Path     string        `json:"path"`
	Size     int64         `json:"size"`
	Digest   digest.Digest `json:"sha256"`
	Kind     string        `json:"kind"`
	Platform string        `json:"platform,omitempty"`
	Version  string        `json:"version,omitempty"`
}

// Catalog is a verified generation of the published tree: every object
// with its length, sha256 and classification. Build one with New, which
// checks and indexes it; Lookup needs the index.
type Catalog struct {
	Generation uint64    `json:"generation"`
	Published  time.Time `json:"published"`
	Objects    []Object  `json:"objects"` // sorted by Path
	index      map[string]int
}

// New sorts objects by path, checks them (safe, unique paths, a sha256
// each, a known kind) and returns the indexed catalog of generation.
func New(generation uint64, published time.Time, objects []Object) (*Catalog, error) {
	c := &Catalog{Generation: generation, Published: published, Objects: objects}
	sortObjects(c.Objects)
	if err := validate(c); err != nil {
		return nil, err
	}
	c.buildIndex()
	return c, nil
}

func (c *Catalog) buildIndex() {
	c.index = make(map[string]int, len(c.Objects))
	for i, o := range c.Objects {
		c.index[o.Path] = i
	}
}

// Classify derives kind, platform and version from a path:
// security/… → security; software/<platform>/<version>/… → software with
// platform and version; anything else → other.
func Classify(path string) (kind, platform, version string) {
	first, rest, _ := strings.Cut(path, "/")
	switch first {
	case "security":
		return KindSecurity, "", ""
	case "software":
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) == 3 {
			return KindSoftware, parts[0], parts[1]
		}
		return KindSoftware, "", ""
	}
	return KindOther, "", ""
}

// validate checks that the content is safe to use.
func validate(c *Catalog) error {
	if c.Generation == 0 {
		return fmt.Errorf("%w: generation 0", ErrMalformed)
	}
	seen := make(map[string]struct{}, len(c.Objects))
	for i, o := range c.Objects {
		key, err := cleanpath.Key(cleanpath.Escape(o.Path))
		if err != nil || key != o.Path || o.Path == "-" || strings.HasPrefix(o.Path, "-/") {
			return fmt.Errorf("%w: object %d: unsafe path %q", ErrMalformed, i, o.Path)
		}
		if _, dup := seen[o.Path]; dup {
			return fmt.Errorf("%w: duplicate path %q", ErrMalformed, o.Path)
		}
		seen[o.Path] = struct{}{}
		if o.Size < 0 {
			return fmt.Errorf("%w: %q: negative size", ErrMalformed, o.Path)
		}
		if o.Digest.IsZero() {
			return fmt.Errorf("%w: %q: no sha256", ErrMalformed, o.Path)
		}
		switch o.Kind {
		case KindSecurity, KindSoftware, KindOther:
		default:
			return fmt.Errorf("%w: %q: unknown kind %q", ErrMalformed, o.Path, o.Kind)
		}
	}
	return nil
}

// Lookup returns the object at path.
func (c *Catalog) Lookup(path string) (Object, bool) {
	i, ok := c.index[path]
	if !ok {
		return Object{}, false
	}
	return c.Objects[i], true
}

func sortObjects(o []Object) {
	slices.SortFunc(o, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
}
