// Package httpx holds the HTTP helpers every relayd port shares: handlers
// that return errors (Handle), the Error type and its JSON answer
// ({"error": …, "code": …}), WriteJSON, the 405 handler and the access log
// (one line per request, 431 for oversized headers, panics to 500).
//
// It knows no relayd behaviour: which sentinel error of the cache, the
// mirror or the hierarchy becomes which status is the content server's
// table (pkg/server/errors.go), handed in as an Errors value. The admin
// port uses the generic classification, so it depends on this package
// and not on the content server.
package httpx
