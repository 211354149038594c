// Package httprange parses the HTTP Range request header (RFC 9110 §14) into
// byte ranges of a representation of known size, and writes the matching
// Content-Range values.
//
// It separates the two ways a Range header can fail, because RFC 9110 asks for
// different answers: a header that does not parse (ErrInvalid) is ignored and
// the whole object is served with 200, while a well-formed header none of whose
// ranges overlap the object (ErrUnsatisfiable) gets 416 with
// UnsatisfiedContentRange.
//
// It does not serve anything: choosing between a single part and
// multipart/byteranges, evaluating If-Range, and coalescing overlapping ranges
// are left to the handler. Ranges come back in the order the client asked for
// them.
//
// Pin (resume.go) is the one check of a resumed transfer: it pins the strong
// ETag and complete length of a first response, writes the Range and If-Range
// of a resume request, and accepts an answer only when it is a 206 of that same
// representation at the offset asked for; anything else is a *RefusedError
// saying why, and its bytes must not be appended.
package httprange
