// Package api holds the OpenAPI 3 description of relayd's two HTTP
// surfaces, openapi.yaml: the content port (objects and the agent API
// under /-/) and the admin port (/v1/…, /metrics, /debug/pprof/).
//
// It has no code: its test keeps the spec honest. It checks that every
// route of the content and admin routers is in the spec and every spec
// path is routed, and validates the responses of real nodes (origin,
// mirror, proxy) against the spec's schemas.
package api
