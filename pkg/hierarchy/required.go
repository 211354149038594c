// What every upstream of the tree must serve: a 404 for it is a broken
// parent, not an answer.
package hierarchy

import (
	"context"
	"errors"
)

// ErrNotFound: every upstream (and fallback) answered 404 to a Required
// request.
var ErrNotFound = errors.New("hierarchy: no upstream has it")

type requiredKey struct{}

// Required marks requests made with ctx as asking for something every
// upstream must have (the TUF metadata a relay verifies with --root): a
// 404 then counts as that upstream failing, and the request goes on to
// the next upstream and then to the fallbacks, instead of taking one
// parent's 404 (a plain static server, a misconfigured or hostile
// parent) for the whole tree's answer. When every one answers 404 the
// error wraps ErrNotFound and ErrUnavailable.
func Required(ctx context.Context) context.Context {
	return context.WithValue(ctx, requiredKey{}, true)
}

// answered reports whether status from an upstream is its answer to a
// request made with ctx, rather than a failure to try the next one on.
func answered(ctx context.Context, status int) bool {
	if status >= 500 {
		return false
	}
	required, _ := ctx.Value(requiredKey{}).(bool)
	return !required || status != 404
}
