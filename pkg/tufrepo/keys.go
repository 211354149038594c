package tufrepo

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
)

// GenerateKey writes a new ed25519 key pair for a role into dir:
// name.key (PKCS#8 PEM, 0600) and name.pub (PKIX PEM), the format
// pkg/catalog has always written, and returns the paths and the key's TUF
// key ID. It refuses to overwrite either file.
func GenerateKey(dir, name string) (privPath, pubPath, keyID string, err error) {
	if !validKeyName(name) {
		return "", "", "", fmt.Errorf("tufrepo: key name %q: want lower-case letters, digits, '-' or '_' (at most 64)", name)
	}
	privPath, pubPath, err = catalog.GenerateKeyPair(dir, name)
	if err != nil {
		return "", "", "", err
	}
	k, err := LoadPublicKey(pubPath)
	if err != nil {
		return "", "", "", err
	}
	id, err := k.ID()
	return privPath, pubPath, id, err
}

func validKeyName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return false
		}
	}
	return true
}

// KeyID is the TUF key ID of pub (go-tuf's: the sha256 of the canonical
// key object).
func KeyID(pub ed25519.PublicKey) (string, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("tufrepo: %w", err)
	}
	return k.ID()
}

// LoadPublicKey reads a role's public key as a TUF key: a NAME.pub file,
// or a NAME.key file (its public half), so an operator can name either.
func LoadPublicKey(path string) (*metadata.Key, error) {
	var pub ed25519.PublicKey
	if strings.HasSuffix(path, ".key") {
		priv, err := catalog.LoadPrivateKey(path)
		if err != nil {
			return nil, err
		}
		pub = priv.Public().(ed25519.PublicKey)
	} else {
		p, err := catalog.LoadPublicKey(path)
		if err != nil {
			return nil, err
		}
		pub = p
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", path, err)
	}
	return k, nil
}

// KeyRing is the private keys at hand, by TUF key ID. It signs a
// metadata object with every key it holds that the object's role lists.
type KeyRing struct {
	keys map[string]ringKey
}

type ringKey struct {
	path   string
	signer signature.Signer
}

// NewKeyRing is an empty ring (it signs nothing: everything is staged).
func NewKeyRing() *KeyRing { return &KeyRing{keys: map[string]ringKey{}} }

// LoadKeyRing loads the private key files (NAME.key) of files and every
// *.key of each directory of dirs.
func LoadKeyRing(files, dirs []string) (*KeyRing, error) {
	r := NewKeyRing()
	for _, d := range dirs {
		m, err := filepath.Glob(filepath.Join(d, "*.key"))
		if err != nil {
			return nil, fmt.Errorf("tufrepo: keys %s: %w", d, err)
		}
		if len(m) == 0 {
			if _, err := os.Stat(d); err != nil {
				return nil, fmt.Errorf("tufrepo: keys: %w", err)
			}
		}
		files = append(files, m...)
	}
	for _, f := range files {
		if _, err := r.AddFile(f); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// AddFile loads a private key file into the ring and returns its key ID.
func (r *KeyRing) AddFile(path string) (string, error) {
	priv, err := catalog.LoadPrivateKey(path)
	if err != nil {
		return "", err
	}
	return r.Add(priv, path)
}

// Add puts priv into the ring; name says where it came from (messages).
func (r *KeyRing) Add(priv ed25519.PrivateKey, name string) (string, error) {
	id, err := KeyID(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return "", err
	}
	s, err := signature.LoadED25519Signer(priv)
	if err != nil {
		return "", fmt.Errorf("tufrepo: %s: %w", name, err)
	}
	r.keys[id] = ringKey{path: name, signer: s}
	return id, nil
}

// IDs are the key IDs of the ring, sorted.
func (r *KeyRing) IDs() []string {
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Has says whether the ring holds the key id.
func (r *KeyRing) Has(id string) bool {
	_, ok := r.keys[id]
	return ok
}

// Len is the number of keys in the ring.
func (r *KeyRing) Len() int { return len(r.keys) }

// signWith signs m with every key of ids the ring holds and m is not yet
// signed with, and returns the file's bytes and how many of ids have
// signed m now. The signed part is written in the canonical form the
// signatures are over (go-tuf's: cjson), so it is encoded once, and
// copies signed on other machines stay byte-identical in it (combine).
func signWith[T metadata.Roles](r *KeyRing, m *metadata.Metadata[T], ids []string) ([]byte, int, error) {
	payload, err := canonical(&m.Signed)
	if err != nil {
		return nil, 0, fmt.Errorf("tufrepo: encode: %w", err)
	}
	for _, id := range ids {
		k, ok := r.keys[id]
		if !ok || signedBy(m.Signatures, id) {
			continue
		}
		sig, err := k.signer.SignMessage(bytes.NewReader(payload))
		if err != nil {
			return nil, 0, fmt.Errorf("tufrepo: sign with %s: %w", k.path, err)
		}
		m.Signatures = append(m.Signatures, metadata.Signature{KeyID: id, Signature: sig})
	}
	file, err := encodeFile(m.Signatures, payload)
	return file, countSigned(m.Signatures, ids), err
}

// canonical is the canonical JSON of a signed part: cjson's, through
// canonicalTargets for the targets roles it takes.
func canonical(signed any) ([]byte, error) {
	if t, ok := signed.(*metadata.TargetsType); ok {
		if b, ok := canonicalTargets(t); ok {
			return b, nil
		}
	}
	return cjson.EncodeCanonical(signed)
}

// encodeFile is a metadata file: its signatures and the canonical signed
// part.
func encodeFile(sigs []metadata.Signature, payload []byte) ([]byte, error) {
	if sigs == nil {
		sigs = []metadata.Signature{}
	}
	sb, err := json.Marshal(sigs)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: encode signatures: %w", err)
	}
	out := make([]byte, 0, len(sb)+len(payload)+32)
	out = append(out, `{"signatures":`...)
	out = append(out, sb...)
	out = append(out, `,"signed":`...)
	out = append(out, payload...)
	return append(out, '}'), nil
}

func signedBy(sigs []metadata.Signature, id string) bool {
	return slices.ContainsFunc(sigs, func(s metadata.Signature) bool { return s.KeyID == id })
}

// countSigned counts the keys of ids with a signature in sigs (present,
// not verified: go-tuf verifies).
func countSigned(sigs []metadata.Signature, ids []string) int {
	n := 0
	for _, id := range ids {
		if signedBy(sigs, id) {
			n++
		}
	}
	return n
}
