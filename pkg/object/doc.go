// Package object is the shape every content response has inside relayd,
// whichever mode produced it: metadata (size, validators, the headers to
// send, where it came from) plus a Body that can copy any byte range to a
// writer, possibly while the bytes are still arriving.
//
// The origin serves files as objects, the proxy cache serves hits and fills
// as objects, and the content handler turns any object into an HTTP
// response. It holds no policy: it does not decide what is fresh or where
// bytes come from.
package object
