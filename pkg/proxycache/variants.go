package proxycache

// Variants (RFC 9111 §4.1): a response that varies is stored at its key
// when no other variant is there, else beside it at a variant key (the key,
// a NUL, and a digest of the request values it varies on: no request key
// holds a NUL). At most MaxVariants responses are kept per key.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/store"
)

// MaxVariants is the most responses that vary kept for one key: its own
// and MaxVariants-1 beside it; the oldest beside it goes first.
const MaxVariants = 4

// variantSep starts the suffix of a variant key.
const variantSep = "\x00"

// variantKey is where the variant selected by the request fields vary
// names (their values taken from h) is stored beside key.
func variantKey(key string, vary []varyField, h http.Header) string {
	sum := sha256.New()
	for _, f := range vary {
		sum.Write([]byte(f.name))
		sum.Write([]byte{0})
		sum.Write([]byte(varyValue(h, f.name)))
		sum.Write([]byte{0})
	}
	return key + variantSep + hex.EncodeToString(sum.Sum(nil)[:8])
}

// storeKey is where a fill's answer (its header h) is kept: its key,
// unless the answer varies and another variant is stored at the key; then
// the variant key of the request that started the fill.
func (c *Cache) storeKey(f *fill, h http.Header) string {
	v := strings.Join(h.Values("Vary"), ",")
	if v == "" {
		return f.key
	}
	vary := variesOn(map[string]string{"Vary": v})
	cur, err := c.store.Get(f.key)
	if err != nil {
		return f.key
	}
	stored := variesOn(cur.Header)
	if len(stored) == 0 || varyMatch(stored, f.req) {
		return f.key
	}
	for _, x := range vary {
		if x.star {
			return f.key // never stored
		}
	}
	return variantKey(f.key, vary, f.req)
}

// boundVariants makes room for the variant about to be stored at vk: the
// oldest variants beside key go until fewer than MaxVariants-1 others
// remain.
func (c *Cache) boundVariants(key, vk string) {
	type variant struct {
		key    string
		stored time.Time
	}
	var others []variant
	_ = c.store.List(key+variantSep, func(k string, e store.Entry) bool {
		if k != vk {
			others = append(others, variant{k, e.Stored})
		}
		return len(others) < 4*MaxVariants // bounded however many are there
	})
	for len(others) >= MaxVariants-1 {
		oldest := 0
		for i, o := range others {
			if o.stored.Before(others[oldest].stored) {
				oldest = i
			}
		}
		_ = c.store.Delete(others[oldest].key)
		others = append(others[:oldest], others[oldest+1:]...)
	}
}

// dropVariants removes the variants stored beside key (key is gone).
func (c *Cache) dropVariants(key string) {
	var keys []string
	_ = c.store.List(key+variantSep, func(k string, _ store.Entry) bool {
		keys = append(keys, k)
		return len(keys) < 4*MaxVariants
	})
	for _, k := range keys {
		_ = c.store.Delete(k)
	}
}
