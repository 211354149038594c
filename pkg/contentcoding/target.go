package contentcoding

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/relayd/relayd/pkg/digest"
)

// Target is what a fetch expects (the signed target's length and digest),
// so that the answer may travel encoded: the upstream client
// (pkg/hierarchy) reads it from the request's context, asks for zstd, and
// for dcz when Dict is set, and decodes and checks the answer.
type Target struct {
	// Length and Digest are the signed target's. Required.
	Length int64
	Digest digest.Digest
	// Dict is a blob the caller holds (an earlier version of the object),
	// offered as a dcz dictionary; zero: zstd only.
	Dict digest.Digest
	// LoadDict returns Dict's bytes; called only for a dcz answer.
	LoadDict func() ([]byte, error)
}

// ErrRefused wraps the failure of an encoded answer fetched for a Target:
// it did not decode, or decoded to other bytes than the target's digest.
// Nothing of it may be kept (a partial file included); the next fetch of
// the object asks for the identity.
var ErrRefused = errors.New("encoded answer refused")

type targetKey struct{}

// WithTarget makes the fetches made with ctx ask for an encoded answer of t.
func WithTarget(ctx context.Context, t Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// TargetFrom returns the Target of ctx, if any.
func TargetFrom(ctx context.Context) (Target, bool) {
	t, ok := ctx.Value(targetKey{}).(Target)
	return t, ok
}

// DefaultMaxDictionary is the largest blob offered or used as a dictionary
// by default (Config.MaxDictionary): encoder and decoder hold it in memory.
const DefaultMaxDictionary = 128 << 20

// ReadBlob reads blob d whole, as a dictionary: at most max bytes (a larger
// blob is an error, and nothing is read).
func ReadBlob(blobs Blobs, d digest.Digest, max int64) ([]byte, error) {
	r, err := blobs.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size > max {
		return nil, fmt.Errorf("contentcoding: dictionary %s is %d bytes, over %d", d, r.Size, max)
	}
	b := make([]byte, r.Size)
	if _, err := r.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && r.Size == 0) {
		return nil, fmt.Errorf("contentcoding: read dictionary %s: %w", d, err)
	}
	return b, nil
}
