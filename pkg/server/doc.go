// Package server is relayd's HTTP surface on the content port: objects at
// the root (GET, HEAD, Range, conditional requests) and the agent API
// under the reserved prefix /-/.
//
// Handlers return errors; one adapter (errors.go) turns an error into a
// status, a JSON body {"error": …, "code": …} and fields of the request's
// single log line (middleware.go). serve.go is the one place an object
// becomes a response, whether it comes from an origin directory, the disk
// cache or a fill still in flight.
//
// It holds no caching policy: it asks a Source for an object by key.
package server
