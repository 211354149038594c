// Package ratelog keeps repeated log lines from flooding a relay's log:
// a Limiter lets one line per key through per interval and counts the
// lines it held back, which the next line of that key reports as
// "repeated": N. Anything a stranger can trigger at will (garbage gossip
// packets, refused requests, an upstream that keeps failing) is logged
// through one, so its log stays readable and its disk is not filled.
//
// It does not decide what is worth logging, sample, or aggregate fields:
// the lines it lets through are the callers' own, unchanged but for the
// count. The number of keys is bounded (MaxKeys), so keys derived from
// what the network sends cannot grow it without end.
package ratelog
