// Package hierarchy decides which upstream a relay asks: it holds the
// configured upstream base URLs (a parent group's relays or an origin),
// tries them in random order, skips those that fail and turns a slow or
// silent upstream into an error within seconds instead of hanging. A body
// that breaks goes on from the next upstream (resume.go), only with a 206 of
// the same representation (httprange.Pin): never spliced from two versions.
//
// It opens connections outbound only and speaks plain HTTP(S) GET, so any
// static server works as an upstream. It does not cache, verify or store:
// that is proxycache's and mirror's job. What it sends and reads on the
// way (the /-/relays list, reports, headers) is declared in pkg/wire;
// tree.go keeps the reports children send.
package hierarchy
