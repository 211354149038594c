// Package treeauth is the tree credential: how a child relay proves to its
// parents that it belongs to the tree before they take its report or count
// its event stream as a child relay's.
//
// Every relay of a tree holds the same 32-byte key (`relayd keygen --tree`,
// `--tree-key-file`). A child signs each control-plane request with an
// HMAC-SHA256 over the method, the endpoint, a timestamp, its group and
// node, the audience (the Host it addresses), a random nonce and, for a
// request with a body, the body's sha256, all sent in one header
// (wire.AuthHeader). The parent checks the header before it reads a byte of
// the body, then hashes the body as it reads it and refuses the request
// when the digest differs. A verified client certificate (mutual TLS,
// --peer-ca) naming the node is proof too.
//
// The receiver takes a signature once: it remembers the signatures it
// verified within the allowed clock skew (MaxSkew, either way) and refuses
// a second use (ErrReplayed), so a header seen on the wire cannot be
// replayed to the parent it was sent to. It must name the Host the
// request was received by; since a sender chooses the Host it sends, this
// stops a signature from being taken by a parent addressed under another
// name, not by one an attacker addresses with the signed name: there, the
// signature is still taken at most once. The memory is bounded (MaxSeen);
// when full it forgets the earliest-signed and refuses anything signed
// no later than that (the window narrows, no replay gets in).
//
// What it does not do: it does not encrypt (use the TLS port between
// sites). It authenticates relays, never agents, which stay anonymous.
package treeauth
