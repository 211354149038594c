// The rollout role's document: the signed gates of a staged rollout
// (TREE/-/tuf/rollout.json), and the pins that name a generation in it.
package tufrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/atomicfile"
	"github.com/relayd/relayd/pkg/wire"
)

// DefaultGatesExpiry is how long signed gates stay valid by default.
const DefaultGatesExpiry = 24 * time.Hour

// SignGates signs g with the ring's rollout keys into the gates envelope
// (a targets-typed metadata file with no targets whose signed part
// carries g under wire.GatesField), version = the held file's + 1 (1 for
// the first), expiring expiry (default DefaultGatesExpiry) after now, and
// writes it atomically to TREE/-/tuf/rollout.json. It returns the file.
// The tree's newest root must list a rollout role, and the ring must hold
// its threshold of keys.
func SignGates(tree string, ring *KeyRing, g wire.Gates, expiry time.Duration, now time.Time) ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	// The reason may quote what agents reported: a control character
	// there must not stop a halt from being signed.
	g.Reason = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, g.Reason)
	if expiry <= 0 {
		expiry = DefaultGatesExpiry
	}
	s, unlock, err := openRootsLocked(tree)
	if err != nil {
		return nil, err
	}
	defer unlock()
	e := rootEntry(s.root, wire.RolloutRole)
	if len(e.keyIDs) == 0 {
		return nil, fmt.Errorf("tufrepo: root version %d has no %s role: add one with relayd tuf rotate --rollout-key", s.root.Signed.Version, wire.RolloutRole)
	}
	held, err := heldGatesVersion(s.dir)
	if err != nil {
		return nil, err
	}
	field, err := gatesField(g)
	if err != nil {
		return nil, err
	}
	md := metadata.Targets(now.UTC().Truncate(time.Second).Add(expiry))
	md.Signed.Version = held + 1
	md.Signed.UnrecognizedFields = map[string]any{wire.GatesField: field}
	data, n, err := signWith(ring, md, e.keyIDs)
	if err != nil {
		return nil, err
	}
	if n < e.threshold {
		return nil, fmt.Errorf("tufrepo: the gates need %d signature(s) of the %s keys %v; the ring holds %d", e.threshold, wire.RolloutRole, e.keyIDs, n)
	}
	// What a client does with the file: decode it and verify it with the root.
	check, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: the new gates do not decode: %w", err)
	}
	if err := s.root.VerifyDelegate(wire.RolloutRole, check); err != nil {
		return nil, fmt.Errorf("tufrepo: the new gates do not verify: %w", err)
	}
	if len(data) > wire.MaxGatesSize {
		return nil, fmt.Errorf("tufrepo: the gates are %d bytes, more than %d", len(data), wire.MaxGatesSize)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, wire.GatesName), data, 0o644); err != nil {
		return nil, fmt.Errorf("tufrepo: write %s: %w", wire.GatesName, err)
	}
	return data, nil
}

// gatesField is g as the generic JSON value go-tuf keeps among a
// metadata file's unrecognized fields (numbers as json.Number, so cjson
// encodes them exactly).
func gatesField(g wire.Gates) (any, error) {
	b, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: encode gates: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("tufrepo: encode gates: %w", err)
	}
	if s, ok := controlString(v); ok {
		return nil, fmt.Errorf("tufrepo: gates: %q holds a control character (canonical JSON cannot carry it)", s)
	}
	return v, nil
}

// controlString finds a string with a control character in v: canonical
// JSON (cjson, what go-tuf signs) writes them unescaped, which no JSON
// reader takes back.
func controlString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, strings.ContainsFunc(v, isControl)
	case []any:
		for _, x := range v {
			if s, ok := controlString(x); ok {
				return s, true
			}
		}
	case map[string]any:
		for k, x := range v {
			if s, ok := controlString(k); ok {
				return s, true
			}
			if s, ok := controlString(x); ok {
				return s, true
			}
		}
	}
	return "", false
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// heldGatesVersion is the version of TREE/-/tuf/rollout.json, 0 when
// there is none.
func heldGatesVersion(dir string) (int64, error) {
	b, err := readBounded(filepath.Join(dir, wire.GatesName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var env struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Signed.Version < 1 {
		return 0, fmt.Errorf("tufrepo: %s holds no readable version (%v): remove it to start again at 1 (clients then refuse gates until the version passes theirs)", wire.GatesName, err)
	}
	return env.Signed.Version, nil
}

// HeldGates reads TREE/-/tuf/rollout.json: its gates, version and expiry
// (verified with the tree's newest root). ok is false when there is none.
func HeldGates(tree string) (g *wire.Gates, version int64, expires time.Time, ok bool, err error) {
	abs, dir, err := metaDir(tree)
	if err != nil {
		return nil, 0, time.Time{}, false, err
	}
	b, err := readBounded(filepath.Join(dir, wire.GatesName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, time.Time{}, false, nil
	}
	if err != nil {
		return nil, 0, time.Time{}, false, err
	}
	s := &state{tree: abs, dir: dir}
	if err := s.loadRoots(); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	md, err := metadata.Targets().FromBytes(b)
	if err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("tufrepo: %s: %w", wire.GatesName, err)
	}
	if err := s.root.VerifyDelegate(wire.RolloutRole, md); err != nil {
		return nil, 0, time.Time{}, false, fmt.Errorf("tufrepo: %s does not verify with root version %d: %w", wire.GatesName, s.root.Signed.Version, err)
	}
	if g, err = DecodeGates(b); err != nil {
		return nil, 0, time.Time{}, false, err
	}
	return g, md.Signed.Version, md.Signed.Expires, true, nil
}

// DecodeGates takes the gates out of a gates file (not verified: that is
// the caller's business) and checks them with wire.Gates.Validate.
func DecodeGates(raw []byte) (*wire.Gates, error) {
	var env struct {
		Signed map[string]json.RawMessage `json:"signed"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", wire.GatesName, err)
	}
	f, ok := env.Signed[wire.GatesField]
	if !ok {
		return nil, fmt.Errorf("tufrepo: %s has no %q", wire.GatesName, wire.GatesField)
	}
	var g wire.Gates
	if err := json.Unmarshal(f, &g); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", wire.GatesName, err)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", wire.GatesName, err)
	}
	return &g, nil
}

// PinOf is the pin of published generation gen of tree: its snapshot
// file's length and sha256, after checking that the file is that
// snapshot version, signed by the snapshot role of the newest root (or of
// the one before, right after a rotation).
func PinOf(tree string, gen int64) (wire.Pin, error) {
	if gen < 1 {
		return wire.Pin{}, fmt.Errorf("tufrepo: generation %d: want 1 or more", gen)
	}
	abs, dir, err := metaDir(tree)
	if err != nil {
		return wire.Pin{}, err
	}
	s := &state{tree: abs, dir: dir, stale: map[string]bool{}}
	if err := s.loadRoots(); err != nil {
		return wire.Pin{}, err
	}
	name := fileName(gen, metadata.SNAPSHOT)
	raw, err := readBounded(filepath.Join(dir, name))
	if err != nil {
		return wire.Pin{}, fmt.Errorf("tufrepo: generation %d: %w", gen, err)
	}
	snap, err := metadata.Snapshot().FromBytes(raw)
	if err != nil {
		return wire.Pin{}, fmt.Errorf("tufrepo: %s: %w", name, err)
	}
	if snap.Signed.Version != gen {
		return wire.Pin{}, fmt.Errorf("tufrepo: %s holds version %d", name, snap.Signed.Version)
	}
	if err := s.verifyTop(metadata.SNAPSHOT, snap); err != nil {
		return wire.Pin{}, err
	}
	sum := sha256.Sum256(raw)
	return wire.Pin{Version: uint64(gen), Length: int64(len(raw)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// openRootsLocked takes the tree's writer lock and loads its root chain
// only (what signing the gates needs; the targets of a large tree are
// not read).
func openRootsLocked(tree string) (*state, func(), error) {
	abs, dir, err := metaDir(tree)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := lock(tree)
	if err != nil {
		return nil, nil, err
	}
	s := &state{tree: abs, dir: dir, stale: map[string]bool{}}
	if err := s.loadRoots(); err != nil {
		unlock()
		return nil, nil, err
	}
	return s, unlock, nil
}

// gatedGenerations are the generations the gates in dir open some ring
// at: their metadata stays (prune) while agents may install them. The
// file is the origin's own, read without verifying: it only keeps files.
func gatedGenerations(dir string) []int64 {
	b, err := readBounded(filepath.Join(dir, wire.GatesName))
	if err != nil {
		return nil
	}
	g, err := DecodeGates(b)
	if err != nil {
		return nil
	}
	var out []int64
	for _, r := range g.Rings {
		if r.Open.Version > 0 {
			out = append(out, int64(r.Open.Version))
		}
	}
	return out
}
