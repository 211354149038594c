package proxycache

// What the verified TUF metadata says of a key (the Expecter), asked once
// per request before anything is looked up or fetched for it (admit).

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// Expecter knows what an object must be: the catalog of the verified TUF
// metadata (mirror.Mirror, following it). A cache with an Expecter fails
// closed: until verified metadata is loaded it serves and stores nothing
// (ErrCatalogUnavailable), and then only what the catalog lists, unless
// Config.AllowUnlisted.
type Expecter interface {
	// Expect returns the catalog's entry for key (its digest and size)
	// and the generation of that catalog; ok is false for keys it does
	// not list, and generation is 0 when no verified catalog is loaded
	// (generations start at 1). Fills of listed keys ask for that
	// generation (wire.GenerationHeader), so a parent that has not
	// completed it answers 503, not an old object or a 404.
	Expect(key string) (o catalog.Object, generation uint64, ok bool)
}

// expectation is what the catalog says of one key. A request looks it up
// once and hands it down, so everything it decides rests on one answer.
type expectation struct {
	listed     bool
	digest     digest.Digest
	size       int64
	generation uint64
}

// admit asks the catalog about key, before anything is looked up or
// fetched for it: a listed key is verified against its entry; without a
// loaded catalog nothing is admitted, and an unlisted key only when
// AllowUnlisted (then as a plain key). Without an Expecter every key is
// plain. The relay's reserved paths (the metadata under -/tuf/ a plain
// proxy passes on) are not objects the catalog could list, and pass as
// plain keys.
func (c *Cache) admit(key string) (expectation, error) {
	if c.expect == nil {
		return expectation{}, nil
	}
	o, g, ok := c.expect.Expect(key)
	switch {
	case ok:
		return expectation{listed: true, digest: o.Digest, size: o.Size, generation: g}, nil
	case key == "-" || strings.HasPrefix(key, "-/"):
		return expectation{}, nil
	case g == 0:
		return expectation{}, fmt.Errorf("%w: %s is refused until one is loaded", ErrCatalogUnavailable, key)
	case !c.cfg.AllowUnlisted:
		return expectation{}, fmt.Errorf("%w: %s is not listed in generation %d", ErrNotInCatalog, key, g)
	}
	return expectation{}, nil
}

// ask marks a request for a listed key with the generation it comes from.
func (x expectation) ask(h http.Header) {
	if x.listed && x.generation > 0 {
		h.Set(wire.GenerationHeader, strconv.FormatUint(x.generation, 10))
	}
}
