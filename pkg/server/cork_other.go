//go:build !linux

package server

import "errors"

// setCork fails where there is no TCP_CORK, so cork does nothing: a small
// response may leave in two segments. (BSD's TCP_NOPUSH is left alone:
// clearing it does not send what it held back on every system.)
func setCork(uintptr, int) error { return errors.ErrUnsupported }
