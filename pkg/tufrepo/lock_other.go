//go:build !unix

package tufrepo

// lock is a no-op where flock does not exist: run one writer per tree
// there (the origin's timestamp refresh and a publish are then not
// serialized).
func lock(string) (func(), error) { return func() {}, nil }
