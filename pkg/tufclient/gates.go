// The rollout role's gates (issue 15): verified with the trusted root's
// rollout role, held with a replay floor that survives restarts.
package tufclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/atomicfile"
	"github.com/relayd/relayd/pkg/wire"
)

// Errors of VerifyGates (ErrExpired too, through an *ExpiredError of
// role "rollout").
var (
	// ErrNoRolloutRole: the trusted root lists no rollout role, so there
	// are no gates to verify (and no gating).
	ErrNoRolloutRole = errors.New("tufclient: the trusted root has no rollout role")
	// ErrGatesForged: the gates are not signed by the rollout role's
	// threshold of the trusted root, or are not a gates document.
	ErrGatesForged = errors.New("tufclient: rollout gates not signed by the rollout role")
	// ErrGatesReplayed: the gates are older than the held ones, or of the
	// same version with other bytes.
	ErrGatesReplayed = errors.New("tufclient: rollout gates older than the held ones")
)

// GatesInfo describes a verified gates file.
type GatesInfo struct {
	// Version is the gates file's version (+1 at each signing).
	Version int64
	// Expires is when the signature stops vouching for the gates.
	Expires time.Time
	// Raw is the file as served (what a relay serves its children).
	Raw []byte
}

// heldGates is the newest accepted gates file.
type heldGates struct {
	gates *wire.Gates
	info  GatesInfo
	md    *metadata.Metadata[metadata.TargetsType]
	root  *metadata.Metadata[metadata.RootType] // the root md was last verified with
}

// HasRolloutRole says whether the trusted root lists a rollout role: then
// gates are mandatory (an agent without valid gates installs nothing newer
// than it has).
func (c *Client) HasRolloutRole() bool {
	r := c.rootNow.Load()
	if r == nil {
		return false
	}
	role := r.Signed.Roles[wire.RolloutRole]
	return role != nil && len(role.KeyIDs) > 0
}

// Gates returns the held gates: the newest VerifyGates accepted (or that
// Options.Dir kept from an earlier run and the trusted root still
// verifies). ok is false when none are held or they expired at
// Options.Now; the expired ones are still returned (a relay may show
// them, nobody should act on them).
func (c *Client) Gates() (*wire.Gates, GatesInfo, bool) {
	c.gatesMu.Lock()
	h := c.gates
	c.gatesMu.Unlock()
	if h == nil {
		return nil, GatesInfo{}, false
	}
	return h.gates, h.info, !c.opt.Now().After(h.info.Expires)
}

// VerifyGates verifies raw, a gates file (rollout.json), and holds it:
// signed by the rollout role's threshold of the trusted root, not expired
// at Options.Now, a version at least the held one's (the same version
// only with the same bytes), a targets-typed file without targets or
// delegations whose gates pass wire.Gates.Validate. The accepted file is
// persisted in Options.Dir: the replay floor survives a restart. Held
// gates the trusted root no longer verifies (the rollout keys rotated)
// are no floor: the new keys' gates start again.
func (c *Client) VerifyGates(raw []byte) (*wire.Gates, GatesInfo, error) {
	root := c.rootNow.Load()
	if role := root.Signed.Roles[wire.RolloutRole]; role == nil || len(role.KeyIDs) == 0 {
		return nil, GatesInfo{}, ErrNoRolloutRole
	}
	if len(raw) > wire.MaxGatesSize {
		return nil, GatesInfo{}, fmt.Errorf("%w: %d bytes, more than %d", ErrGatesForged, len(raw), wire.MaxGatesSize)
	}
	c.gatesMu.Lock()
	defer c.gatesMu.Unlock()
	h := c.gates
	if h != nil && h.root != root {
		if root.VerifyDelegate(wire.RolloutRole, h.md) != nil {
			h = nil // signed by rotated-out keys: no floor for the new keys' gates
		} else {
			h.root = root
		}
	}
	now := c.opt.Now()
	if h != nil && bytes.Equal(raw, h.info.Raw) { // the held file again (a relay's poll): verified already
		if now.After(h.info.Expires) {
			return nil, GatesInfo{}, &ExpiredError{Role: wire.RolloutRole, Since: h.info.Expires}
		}
		return h.gates, h.info, nil
	}
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		return nil, GatesInfo{}, fmt.Errorf("%w: %w", ErrGatesForged, err)
	}
	if err := root.VerifyDelegate(wire.RolloutRole, md); err != nil {
		return nil, GatesInfo{}, fmt.Errorf("%w: %w", ErrGatesForged, err)
	}
	if h != nil && md.Signed.Version <= h.info.Version {
		return nil, GatesInfo{}, fmt.Errorf("%w: version %d, holding version %d (other bytes)", ErrGatesReplayed, md.Signed.Version, h.info.Version)
	}
	if md.Signed.IsExpired(now) {
		return nil, GatesInfo{}, &ExpiredError{Role: wire.RolloutRole, Since: md.Signed.Expires}
	}
	g, err := gatesOf(md, raw)
	if err != nil {
		return nil, GatesInfo{}, err
	}
	info := GatesInfo{Version: md.Signed.Version, Expires: md.Signed.Expires, Raw: raw}
	if c.opt.Dir != "" {
		if err := atomicfile.WriteFile(filepath.Join(c.opt.Dir, wire.GatesName), raw, 0o600); err != nil {
			return nil, GatesInfo{}, fmt.Errorf("tufclient: store %s: %w", wire.GatesName, err)
		}
	}
	c.gates = &heldGates{gates: g, info: info, md: md, root: root}
	c.log.Debug().Int64("version", info.Version).Bool("halted", g.Halted).Msg("rollout gates verified")
	return g, info, nil
}

// gatesOf takes the gates out of a verified gates file.
func gatesOf(md *metadata.Metadata[metadata.TargetsType], raw []byte) (*wire.Gates, error) {
	if len(md.Signed.Targets) > 0 || md.Signed.Delegations != nil {
		return nil, fmt.Errorf("%w: %w: a gates file lists no targets and delegates nothing", ErrGatesForged, wire.ErrBadGates)
	}
	var env struct {
		Signed map[string]json.RawMessage `json:"signed"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGatesForged, err)
	}
	f, ok := env.Signed[wire.GatesField]
	if !ok {
		return nil, fmt.Errorf("%w: %w: no %q", ErrGatesForged, wire.ErrBadGates, wire.GatesField)
	}
	var g wire.Gates
	if err := json.Unmarshal(f, &g); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrGatesForged, wire.ErrBadGates, err)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGatesForged, err)
	}
	return &g, nil
}

// loadGates takes the gates kept in Dir, when the trusted root verifies
// them (expired ones too: they are the replay floor).
func (c *Client) loadGates() {
	if c.opt.Dir == "" {
		return
	}
	p := filepath.Join(c.opt.Dir, wire.GatesName)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > wire.MaxGatesSize {
		c.log.Warn().Err(err).Msg("stored rollout gates not usable")
		return
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		c.log.Warn().Err(err).Msg("stored rollout gates not readable")
		return
	}
	md, err := metadata.Targets().FromBytes(raw)
	if err == nil {
		err = c.rootNow.Load().VerifyDelegate(wire.RolloutRole, md)
	}
	var g *wire.Gates
	if err == nil {
		g, err = gatesOf(md, raw)
	}
	if err != nil {
		c.log.Warn().Err(err).Msg("stored rollout gates do not verify with the trusted root: ignored")
		return
	}
	c.gates = &heldGates{gates: g, info: GatesInfo{Version: md.Signed.Version, Expires: md.Signed.Expires, Raw: raw}, md: md, root: c.rootNow.Load()}
}

// heldVersions are the generations prune keeps besides the newest: those
// the held gates open some ring at, and the pinned ones verified.
func (c *Client) heldVersions() []int64 {
	var out []int64
	for _, p := range c.pinned {
		out = append(out, int64(p.pin.Version))
	}
	c.gatesMu.Lock()
	defer c.gatesMu.Unlock()
	if c.gates != nil {
		for _, r := range c.gates.gates.Rings {
			if r.Open.Version > 0 {
				out = append(out, int64(r.Open.Version))
			}
		}
	}
	return out
}
