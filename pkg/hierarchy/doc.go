// Package hierarchy decides which upstream a relay asks: it holds the
// configured upstream base URLs (a parent group's relays or an origin),
// tries them in random order, skips those that fail and turns a slow or
// silent upstream into an error within seconds instead of hanging.
//
// It opens connections outbound only and speaks plain HTTP(S) GET, so any
// static server works as an upstream. It does not cache, verify or store:
// that is proxycache's and mirror's job.
package hierarchy
