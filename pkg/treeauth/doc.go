// Package treeauth is the tree credential: how a child relay proves to its
// parents that it belongs to the tree before they take its report or count
// its event stream as a child relay's.
//
// Every relay of a tree holds the same 32-byte key (`relayd keygen --tree`,
// `--tree-key-file`). A child signs each control-plane request with an
// HMAC-SHA256 over the method, the endpoint, a timestamp, its group and
// node and, for a request with a body, the body's sha256, all sent in one
// header (wire.AuthHeader). The parent checks the header before it reads a byte of
// the body, then hashes the body as it reads it and refuses the request
// when the digest differs. A verified client certificate (mutual TLS,
// --peer-ca) naming the node is proof too.
//
// What it does not do: it does not encrypt, and a header seen on the wire
// can be replayed for the same request within the allowed clock skew
// (MaxSkew): use the TLS port between sites. It authenticates relays,
// never agents, which stay anonymous.
package treeauth
