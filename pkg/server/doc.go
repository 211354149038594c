// Package server is relayd's HTTP surface on the content port: objects at
// the root (GET, HEAD, Range, conditional requests) and the agent API
// under the reserved prefix /-/.
//
// Handlers return errors; errors.go holds the table that turns an error of
// any part of the relay (a cache, mirror, hierarchy or store sentinel)
// into a status and code, answered as a JSON body {"error": …, "code": …}
// by the generic helpers of pkg/httpx, which also write the request's
// single log line. serve.go is the one place an object
// becomes a response, whether it comes from an origin directory, the disk
// cache or a fill still in flight.
//
// It holds no caching policy: it asks a Source for an object by key.
package server
