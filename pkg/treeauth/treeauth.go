package treeauth

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relayd/relayd/internal/atomicfile"
	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/wire"
)

// The credential travels in wire.AuthHeader:
// "v2 t=<unix seconds>,g=<group>,n=<node>,a=<host>,r=<nonce>,b=<body sha256 hex>,m=<mac base64>"
// (group, node and host query-escaped; b only for a request with a
// body). a is the audience, the Host the child addressed; r a random
// nonce, so that no two requests share a signature.

// KeyFile is the file GenerateKey writes.
const KeyFile = "tree.key"

// KeySize is the length of a tree key in bytes.
const KeySize = 32

// MaxSkew is how far a request's timestamp may be from the receiver's
// clock, either way.
const MaxSkew = 5 * time.Minute

// maxHeader bounds the header a receiver parses.
const maxHeader = 1024

// maxName bounds a group or node name in the header.
const maxName = 256

// Sentinel errors: ErrRequired is answered 401 (no credential at all, or
// none this relay can check), ErrInvalid 403 (a credential that does not
// hold).
var (
	ErrRequired = errors.New("treeauth: tree credential required")
	ErrInvalid  = errors.New("treeauth: invalid tree credential")
	// ErrReplayed is a signature this relay has already taken once (a
	// replay): it wraps ErrInvalid.
	ErrReplayed = fmt.Errorf("%w: signature already used", ErrInvalid)
)

// Key is a tree key: every relay of a tree holds the same one.
type Key struct{ b [KeySize]byte }

// NewKey wraps KeySize bytes.
func NewKey(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("treeauth: a tree key is %d bytes, not %d", KeySize, len(b))
	}
	k := &Key{}
	copy(k.b[:], b)
	return k, nil
}

// GenerateKey writes a new random key, base64, to dir/tree.key (mode
// 0600, through internal/atomicfile), refusing to overwrite one.
func GenerateKey(dir string) (string, error) {
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("treeauth: %s exists; refusing to overwrite a key", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("treeauth: %w", err)
	}
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("treeauth: generate key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("treeauth: %w", err)
	}
	if err := atomicfile.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("treeauth: write %s: %w", path, err)
	}
	return path, nil
}

// LoadKey reads a key file: base64 of KeySize bytes.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tree key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != KeySize {
		return nil, fmt.Errorf("tree key %s: want base64 of %d bytes (relayd keygen --tree)", path, KeySize)
	}
	return NewKey(raw)
}

// Claim is what a signed request says of itself.
type Claim struct {
	// Method is the HTTP method; Path the relayd endpoint ("/-/report",
	// "/-/events"), whatever prefix the parent's base URL has.
	Method, Path string
	// Time is when the request was signed (whole seconds count).
	Time time.Time
	// Group and Node name the sender.
	Group, Node string
	// Body is the sha256 of the request body; zero for a request
	// without one.
	Body digest.Digest
	// Audience is the Host the request is sent to (the parent's
	// host:port as the child addresses it); the receiver checks it
	// against the Host it was addressed by.
	Audience string
	// Nonce makes the signature of each request unique (the receiver
	// refuses a signature it has seen); Sign fills it when empty.
	Nonce string
}

// Sign returns the wire.AuthHeader value for c.
func (k *Key) Sign(c Claim) string {
	t := c.Time.Unix()
	if c.Nonce == "" {
		var b [12]byte
		rand.Read(b[:]) // never fails (crypto/rand)
		c.Nonce = base64.RawURLEncoding.EncodeToString(b[:])
	}
	var sb strings.Builder
	sb.WriteString("v2 t=")
	sb.WriteString(strconv.FormatInt(t, 10))
	sb.WriteString(",g=")
	sb.WriteString(url.QueryEscape(c.Group))
	sb.WriteString(",n=")
	sb.WriteString(url.QueryEscape(c.Node))
	sb.WriteString(",a=")
	sb.WriteString(url.QueryEscape(c.Audience))
	sb.WriteString(",r=")
	sb.WriteString(url.QueryEscape(c.Nonce))
	if !c.Body.IsZero() {
		sb.WriteString(",b=")
		sb.WriteString(c.Body.Hex())
	}
	sb.WriteString(",m=")
	sb.WriteString(base64.RawURLEncoding.EncodeToString(k.mac(c.Method, c.Path, t, c.Group, c.Node, c.Audience, c.Nonce, c.Body)))
	return sb.String()
}

// mac is the HMAC-SHA256 of the claim, every field length-prefixed so
// that no two claims share an input.
func (k *Key) mac(method, path string, t int64, group, node, audience, nonce string, body digest.Digest) []byte {
	h := hmac.New(digest.NewHash, k.b[:])
	var buf []byte
	field := func(s string) {
		buf = binary.AppendUvarint(buf[:0], uint64(len(s)))
		h.Write(buf)
		io.WriteString(h, s)
	}
	field("relayd tree auth v2")
	field(method)
	field(path)
	field(strconv.FormatInt(t, 10))
	field(group)
	field(node)
	field(strings.ToLower(audience))
	field(nonce)
	if body.IsZero() {
		field("")
	} else {
		field(body.Hex())
	}
	return h.Sum(nil)
}

// parsed is a wire.AuthHeader value taken apart, not yet verified.
type parsed struct {
	t               int64
	group, node     string
	audience, nonce string
	body            digest.Digest
	mac             []byte
}

// parseHeader takes a wire.AuthHeader value apart; any malformation is ErrInvalid.
func parseHeader(v string) (parsed, error) {
	var p parsed
	bad := func(why string) (parsed, error) { return parsed{}, fmt.Errorf("%w: %s", ErrInvalid, why) }
	if len(v) > maxHeader {
		return bad("header longer than 1 KiB")
	}
	rest, ok := strings.CutPrefix(v, "v2 ")
	if !ok {
		return bad("want version v2 (a relay older than this one signs v1: upgrade the tree together)")
	}
	seen := map[string]bool{}
	for kv := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return bad("malformed field " + strconv.Quote(kv))
		}
		seen[k] = true
		var err error
		switch k {
		case "t":
			p.t, err = strconv.ParseInt(val, 10, 64)
		case "g":
			p.group, err = url.QueryUnescape(val)
		case "n":
			p.node, err = url.QueryUnescape(val)
		case "a":
			p.audience, err = url.QueryUnescape(val)
		case "r":
			p.nonce, err = url.QueryUnescape(val)
		case "b":
			p.body, err = digest.ParseHex(val)
		case "m":
			p.mac, err = base64.RawURLEncoding.DecodeString(val)
		default:
			return bad("unknown field " + strconv.Quote(k))
		}
		if err != nil {
			return bad("field " + k + " does not parse")
		}
	}
	for _, k := range []string{"t", "g", "n", "a", "r", "m"} {
		if !seen[k] {
			return bad("field " + k + " missing")
		}
	}
	switch {
	case p.group == "" || p.node == "" || len(p.group) > maxName || len(p.node) > maxName:
		return bad("group and node must be 1 to 256 bytes")
	case p.audience == "" || len(p.audience) > maxName || p.nonce == "" || len(p.nonce) > 64:
		return bad("audience must be 1 to 256 bytes and nonce 1 to 64")
	}
	return p, nil
}

// Identity is who a control-plane request proved to be.
type Identity struct {
	// By is how: "tree key" or "certificate".
	By string
	// Group and Node are the signed names (tree key).
	Group, Node string
	// Names are the certificate's common name and DNS names (certificate):
	// the node must be one of them; the group is the sender's word.
	Names []string
	// Body is the digest the tree key signed for the request's body; zero
	// for a request without one and for a certificate.
	Body digest.Digest
}

// Is reports whether the identity is the relay group/node.
func (id Identity) Is(group, node string) bool {
	if id.By == ByCertificate {
		return node != "" && slices.Contains(id.Names, node)
	}
	return id.Group == group && id.Node == node
}

// String names the identity for log lines.
func (id Identity) String() string {
	if id.By == ByCertificate {
		return "certificate " + strings.Join(id.Names, ",")
	}
	return id.Group + "/" + id.Node
}

// How an Identity was proved (Identity.By).
const (
	ByKey         = "tree key"
	ByCertificate = "certificate"
)

// Verifier checks control-plane requests. The zero value refuses every
// one with ErrRequired.
type Verifier struct {
	// Key is the tree key; nil: signed requests cannot be checked.
	Key *Key
	// Certificates accepts a verified client certificate (the TLS port
	// with --peer-ca) as proof of the node it names.
	Certificates bool
	// Clock tells the time the timestamps are checked against; nil: the
	// wall clock.
	Clock clock.Clock
	// MaxSeen bounds the signatures remembered to refuse a replay; 0:
	// the package's MaxSeen.
	MaxSeen int

	seen seen
}

// Configured reports whether v can accept anything at all.
func (v *Verifier) Configured() bool { return v != nil && (v.Key != nil || v.Certificates) }

// Verify checks r's credential for endpoint (the path the receiver
// serves, e.g. "/-/report") from its headers alone, before anything of
// the body is read, and returns who sent it. A signature must name r.Host
// as its audience, and is taken once: its second use is ErrReplayed. The caller then checks that
// the identity is the relay the request speaks for (Identity.Is) and,
// for a signed body, reads it through CheckBody.
func (v *Verifier) Verify(r *http.Request, endpoint string) (Identity, error) {
	h := r.Header.Get(wire.AuthHeader)
	if h != "" && v != nil && v.Key != nil {
		return v.verifyKey(r.Method, endpoint, r.Host, h)
	}
	if v != nil && v.Certificates && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		names := append([]string{c.Subject.CommonName}, c.DNSNames...)
		return Identity{By: ByCertificate, Names: slices.DeleteFunc(names, func(s string) bool { return s == "" })}, nil
	}
	switch {
	case !v.Configured():
		return Identity{}, fmt.Errorf("%w: this relay has no tree key (tree-key-file) and no peer CA", ErrRequired)
	case h != "":
		return Identity{}, fmt.Errorf("%w: a signed request, but this relay has no tree key (tree-key-file)", ErrRequired)
	case v.Key != nil:
		return Identity{}, fmt.Errorf("%w: no %s header", ErrRequired, wire.AuthHeader)
	default:
		return Identity{}, fmt.Errorf("%w: no verified client certificate", ErrRequired)
	}
}

// verifyKey checks a signed header: the MAC, then the audience, the
// time, and last that the signature is new.
func (v *Verifier) verifyKey(method, endpoint, host, h string) (Identity, error) {
	p, err := parseHeader(h)
	if err != nil {
		return Identity{}, err
	}
	want := v.Key.mac(method, endpoint, p.t, p.group, p.node, p.audience, p.nonce, p.body)
	if !hmac.Equal(p.mac, want) { // constant time
		return Identity{}, fmt.Errorf("%w: the signature does not match (another tree key?)", ErrInvalid)
	}
	if !strings.EqualFold(p.audience, host) {
		return Identity{}, fmt.Errorf("%w: signed for host %q, received as %q (a proxy rewriting Host?)", ErrInvalid, p.audience, host)
	}
	now := time.Now()
	if v.Clock != nil {
		now = v.Clock.Now()
	}
	if d := now.Sub(time.Unix(p.t, 0)); d > MaxSkew || d < -MaxSkew {
		return Identity{}, fmt.Errorf("%w: signed %s away from this relay's clock (at most %s)", ErrInvalid, d.Round(time.Second), MaxSkew)
	}
	limit := v.MaxSeen
	if limit <= 0 {
		limit = MaxSeen
	}
	if !v.seen.use(p.mac, p.t, now.Add(-MaxSkew).Unix(), limit) {
		return Identity{}, fmt.Errorf("%w (a replay, or more than %d signatures within %s)", ErrReplayed, limit, 2*MaxSkew)
	}
	return Identity{By: ByKey, Group: p.group, Node: p.node, Body: p.body}, nil
}

// CheckBody returns a reader of body that hashes what passes through it:
// at the end it returns ErrInvalid instead of io.EOF when the bytes do
// not hash to want. Read it to the end before trusting what it yielded.
func CheckBody(body io.Reader, want digest.Digest) io.Reader {
	return &bodyCheck{r: body, want: want, h: digest.NewHash()}
}

type bodyCheck struct {
	r    io.Reader
	want digest.Digest
	h    hash.Hash
}

func (b *bodyCheck) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		var got digest.Digest
		b.h.Sum(got[:0])
		if got != b.want {
			return n, fmt.Errorf("%w: the body does not match the signed digest", ErrInvalid)
		}
	}
	return n, err
}

// Signer signs a relay's control-plane requests.
type Signer struct {
	Key         *Key
	Group, Node string
	// Clock tells the signing time; nil: the wall clock.
	Clock clock.Clock
}

// Sign sets r's wire.AuthHeader for endpoint; body is the request's body (nil for
// none).
func (s *Signer) Sign(r *http.Request, endpoint string, body []byte) {
	now := time.Now()
	if s.Clock != nil {
		now = s.Clock.Now()
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	c := Claim{Method: r.Method, Path: endpoint, Time: now, Group: s.Group, Node: s.Node, Audience: host}
	if body != nil {
		c.Body = digest.FromBytes(body)
	}
	r.Header.Set(wire.AuthHeader, s.Key.Sign(c))
}
