//go:build !unix

package object

import "os"

// openPrivate opens a file for sendfile: a descriptor of its own.
func openPrivate(path string) (*os.File, error) { return os.Open(path) }
