package catalog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/digest"
)

// Sentinel errors.
var (
	// ErrBadSignature: the signature does not verify with the key.
	ErrBadSignature = errors.New("catalog: signature does not verify")
	// ErrMalformed: the file is not a well-formed catalog.
	ErrMalformed = errors.New("catalog: malformed")
	// ErrUnknownAlgorithm: the header names a format or algorithm this
	// version does not know.
	ErrUnknownAlgorithm = errors.New("catalog: unknown format or signature algorithm")
	// ErrTooLarge: the file exceeds the limit it is read with (see Read).
	ErrTooLarge = errors.New("catalog: too large")
	// ErrRollback: the generation is lower than the one in hand.
	ErrRollback = errors.New("catalog: generation older than the current one")
)

// The format.
const (
	// maxHeader bounds the header line.
	maxHeader = 256
	magic     = "relayd-catalog-v1"
	alg       = "ed25519"
)

// Kinds of objects.
const (
	KindSecurity = "security"
	KindSoftware = "software"
	KindOther    = "other"
)

// Object is one published file.
type Object struct {
	Path     string        `json:"path"`
	Size     int64         `json:"size"`
	Digest   digest.Digest `json:"sha256"`
	Kind     string        `json:"kind"`
	Platform string        `json:"platform,omitempty"`
	Version  string        `json:"version,omitempty"`
}

// Catalog is a verified generation of the published tree: every object
// with its length, sha256 and classification. Build one with New (or
// Parse), which checks and indexes it; Lookup needs the index.
type Catalog struct {
	Generation uint64    `json:"generation"`
	Published  time.Time `json:"published"`
	Objects    []Object  `json:"objects"` // sorted by Path
	index      map[string]int
}

// New sorts objects by path, checks them (safe, unique paths, a sha256
// each, a known kind) and returns the indexed catalog of generation.
func New(generation uint64, published time.Time, objects []Object) (*Catalog, error) {
	c := &Catalog{Generation: generation, Published: published, Objects: objects}
	sortObjects(c.Objects)
	if err := validate(c); err != nil {
		return nil, err
	}
	c.buildIndex()
	return c, nil
}

func (c *Catalog) buildIndex() {
	c.index = make(map[string]int, len(c.Objects))
	for i, o := range c.Objects {
		c.index[o.Path] = i
	}
}

// Signed is a verified catalog together with the exact file it came from.
type Signed struct {
	Catalog
	// Raw is the whole file (header and signed bytes), served as is.
	Raw []byte
	// FileDigest is the sha256 of Raw: the catalog's ETag.
	FileDigest digest.Digest
}

// Classify derives kind, platform and version from a path:
// security/… → security; software/<platform>/<version>/… → software with
// platform and version; anything else → other.
func Classify(path string) (kind, platform, version string) {
	first, rest, _ := strings.Cut(path, "/")
	switch first {
	case "security":
		return KindSecurity, "", ""
	case "software":
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) == 3 {
			return KindSoftware, parts[0], parts[1]
		}
		return KindSoftware, "", ""
	}
	return KindOther, "", ""
}

// Sign sorts c's objects by path, checks them, encodes c and signs it,
// returning the file.
func Sign(c *Catalog, key ed25519.PrivateKey) ([]byte, error) {
	sortObjects(c.Objects)
	if err := validate(c); err != nil {
		return nil, err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("catalog: encode: %w", err)
	}
	sig := ed25519.Sign(key, body)
	var b bytes.Buffer
	b.Grow(len(body) + 128)
	fmt.Fprintf(&b, "%s %s %s\n", magic, alg, base64.StdEncoding.EncodeToString(sig))
	b.Write(body)
	return b.Bytes(), nil
}

// Parse verifies file with pub and decodes it. Nothing of the JSON is
// looked at before the signature has verified. The size of file is the
// reader's to bound (Read, with the configured limit).
func Parse(file []byte, pub ed25519.PublicKey) (*Signed, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("catalog: no valid public key configured")
	}
	nl := bytes.IndexByte(file[:min(len(file), maxHeader)], '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line", ErrMalformed)
	}
	fields := strings.Fields(string(file[:nl]))
	if len(fields) != 3 {
		return nil, fmt.Errorf("%w: header has %d fields, want 3", ErrMalformed, len(fields))
	}
	if fields[0] != magic || fields[1] != alg {
		return nil, fmt.Errorf("%w: %q %q", ErrUnknownAlgorithm, fields[0], fields[1])
	}
	sig, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is not %d bytes of base64", ErrMalformed, ed25519.SignatureSize)
	}
	body := file[nl+1:]
	if !ed25519.Verify(pub, body, sig) {
		return nil, ErrBadSignature
	}
	s := &Signed{Raw: file, FileDigest: digest.FromBytes(file)}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.Catalog); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the catalog", ErrMalformed)
	}
	if err := validate(&s.Catalog); err != nil {
		return nil, err
	}
	s.buildIndex()
	return s, nil
}

// validate checks what a signature cannot: that the content is safe to use.
func validate(c *Catalog) error {
	if c.Generation == 0 {
		return fmt.Errorf("%w: generation 0", ErrMalformed)
	}
	seen := make(map[string]struct{}, len(c.Objects))
	for i, o := range c.Objects {
		key, err := cleanpath.Key(cleanpath.Escape(o.Path))
		if err != nil || key != o.Path || o.Path == "-" || strings.HasPrefix(o.Path, "-/") {
			return fmt.Errorf("%w: object %d: unsafe path %q", ErrMalformed, i, o.Path)
		}
		if _, dup := seen[o.Path]; dup {
			return fmt.Errorf("%w: duplicate path %q", ErrMalformed, o.Path)
		}
		seen[o.Path] = struct{}{}
		if o.Size < 0 {
			return fmt.Errorf("%w: %q: negative size", ErrMalformed, o.Path)
		}
		if o.Digest.IsZero() {
			return fmt.Errorf("%w: %q: no sha256", ErrMalformed, o.Path)
		}
		switch o.Kind {
		case KindSecurity, KindSoftware, KindOther:
		default:
			return fmt.Errorf("%w: %q: unknown kind %q", ErrMalformed, o.Path, o.Kind)
		}
	}
	return nil
}

// Lookup returns the object at path.
func (c *Catalog) Lookup(path string) (Object, bool) {
	i, ok := c.index[path]
	if !ok {
		return Object{}, false
	}
	return c.Objects[i], true
}

func sortObjects(o []Object) {
	slices.SortFunc(o, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
}
