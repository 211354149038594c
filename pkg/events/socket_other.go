//go:build !linux

package events

import "net"

// unsentBytes cannot ask the socket here: stalled streams are found by
// their write deadline only.
func unsentBytes(net.Conn) (int, bool) { return 0, false }

// setSendBuffer is left to the system here.
func setSendBuffer(net.Conn, int) {}

// peerClosed cannot tell here.
func peerClosed(net.Conn) (closed, ok bool) { return false, false }
