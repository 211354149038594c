// Package admin is the admin port's HTTP API (/v1/…, /metrics): what an
// operator, scripts and the `relayd` admin commands talk to. It is bound
// to loopback unless a bearer token protects it.
// The dashboard (pkg/ui: /ui/ and its stream /v1/events) is mounted
// here too, its files before the token check.
//
// Both sides live here: admin.go serves the API (New), reading the node's
// state through small interfaces and changing nothing on its own;
// docs.go declares the documents it answers (those a behaviour package
// produces are declared once in pkg/admindoc and named here by alias);
// client.go is the Client
// that `relayd status`, `relayd cache …` and the rest use, with one
// method per endpoint and typed answers.
//
// It depends on no behaviour package (test/deps checks it): the parts
// produce the admindoc documents themselves, and the node fills the rest,
// so a client built from this package carries none of the relay.
package admin
