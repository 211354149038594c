// Package hops is the loop guard's vocabulary: every relay-to-relay
// request carries the groups it has crossed in one header
// (wire.PathHeader), and a relay that finds its own group there (or too
// many groups) refuses it, so a misconfigured cycle of upstreams fails
// loudly at the first request instead of looping.
package hops

import (
	"context"
	"errors"
	"fmt"
	"github.com/relayd/relayd/pkg/wire"
	"strings"
)

// DefaultMax is the default limit of groups a request may cross.
const DefaultMax = 8

var (
	// ErrLoop: the request has already crossed this relay's group.
	ErrLoop = errors.New("hops: loop")
	// ErrTooMany: the request has crossed more groups than allowed.
	ErrTooMany = errors.New("hops: too many hops")
	// ErrBad: the header is malformed.
	ErrBad = errors.New("hops: malformed " + wire.PathHeader)
)

// maxHeader bounds what Parse reads.
const maxHeader = 1024

// Parse reads the header value; "" is no hops.
func Parse(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if len(v) > maxHeader {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBad, maxHeader)
	}
	var out []string
	for g := range strings.SplitSeq(v, ",") {
		g = strings.TrimSpace(g)
		if g == "" || strings.ContainsAny(g, " \t\"") {
			return nil, fmt.Errorf("%w: %q", ErrBad, v)
		}
		out = append(out, g)
	}
	return out, nil
}

// Check refuses a request that has crossed group already or more than max
// groups.
func Check(path []string, group string, max int) error {
	for _, g := range path {
		if g == group {
			return fmt.Errorf("%w: the request already crossed group %q (path %s)", ErrLoop, group, strings.Join(path, " → "))
		}
	}
	if max > 0 && len(path) >= max {
		return fmt.Errorf("%w: %d groups crossed (limit %d): %s", ErrTooMany, len(path), max, strings.Join(path, " → "))
	}
	return nil
}

// Format is the header value for a request leaving group after path.
func Format(path []string, group string) string {
	return strings.Join(append(append([]string(nil), path...), group), ",")
}

type ctxKey struct{}

// With records the path of the request being served in ctx.
func With(ctx context.Context, path []string) context.Context {
	if len(path) == 0 {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, path)
}

// From returns the path recorded by With.
func From(ctx context.Context) []string {
	p, _ := ctx.Value(ctxKey{}).([]string)
	return p
}
