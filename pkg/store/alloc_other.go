//go:build !linux

package store

import "os"

// preallocate does nothing where fallocate(2) does not exist: a full disk
// is found by the writes themselves (ErrNoSpace), not before the first
// byte is sent. The relay is built for Linux; elsewhere it runs for
// development and tests.
func preallocate(*os.File, int64) error { return nil }
