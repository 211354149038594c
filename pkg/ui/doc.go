// Package ui is the dashboard on the admin port: a page at /ui/ (HTML, one
// script, one style sheet, embedded in the binary: no CDN, it works in a
// branch cut off from the internet) and the stream it reads, GET
// /v1/events.
//
// The stream sends a snapshot document every second, and at once after a
// change made through the admin API: the node's /v1/status, /v1/tree,
// /v1/cache/stats, /v1/compliance and /v1/rollout, each verbatim as the
// endpoint answers it (so the page shows exactly what the API says), and
// the counters the page plots (hit ratio, WAN bytes saved). One producer
// serves every stream, whatever their number, and runs only while a
// stream is open; the streams are few (Config.MaxStreams).
//
// The page reads the stream with fetch(), not EventSource, so it can send
// the admin token as "Authorization: Bearer": off loopback the admin port
// wants one, and the page asks for it and keeps it in sessionStorage (no
// cookies). The assets themselves hold no data and are served without the
// token, under a Content-Security-Policy that allows nothing but this
// origin's script, style and fetches.
//
// It changes nothing itself: the buttons POST to the admin API, which
// checks them like any client's request.
package ui
