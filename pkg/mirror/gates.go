package mirror

// The rollout gates (issue 15) as a relay follows them: fetched from the
// upstream like the rest of the tree's metadata and verified by the
// relay's TUF client with the rollout role of the root it trusts.

import (
	"context"
	"fmt"

	"github.com/relayd/relayd/pkg/catalog"

	"github.com/relayd/relayd/pkg/tufclient"
	"github.com/relayd/relayd/pkg/wire"
)

// HasRolloutRole reports whether the trusted root lists a rollout role:
// then the relay follows the gates.
func (m *Mirror) HasRolloutRole() bool { return m.tuf.HasRolloutRole() }

// Gates returns the held gates (tufclient.Client.Gates): ok is false when
// none are held or they expired.
func (m *Mirror) Gates() (*wire.Gates, tufclient.GatesInfo, bool) { return m.tuf.Gates() }

// FetchGates fetches the upstream's gates file, at most wire.MaxGatesSize
// bytes; an error wrapping tufclient.ErrNotFound when no parent has one
// (no rollout plan).
func (m *Mirror) FetchGates(ctx context.Context) ([]byte, error) {
	b, err := m.meta.FetchMeta(ctx, wire.GatesName, wire.MaxGatesSize)
	if err != nil {
		return nil, fmt.Errorf("mirror: fetch %s: %w", wire.GatesName, err)
	}
	return b, nil
}

// VerifyGates verifies and holds a gates file (tufclient.Client.VerifyGates).
func (m *Mirror) VerifyGates(raw []byte) (*wire.Gates, tufclient.GatesInfo, error) {
	return m.tuf.VerifyGates(raw)
}

// HoldPinned makes generation pin.Version, older than the live one, a
// held generation (held.go) when Config.Keep asks for it and it is not
// held yet: a relay that started after it was replaced learns its
// metadata and catalog through the upstream (tufclient.Client.Pinned: the
// pin the rollout role signed, then the snapshot and targets it names),
// so that it serves them to its children and agents, and lists and
// serves the generation's versions by consistent name. Its objects are
// fetched when first asked for (OpenVersion, the proxy cache).
func (m *Mirror) HoldPinned(ctx context.Context, pin wire.Pin) error {
	l := m.Live()
	if l == nil || pin.Version == 0 || pin.Version >= l.Catalog.Generation || !m.keepSet()[pin.Version] {
		return nil
	}
	m.mu.RLock()
	_, held := m.held[pin.Version]
	m.mu.RUnlock()
	if held {
		return nil
	}
	m.tufMu.Lock()
	c, err := m.tuf.Pinned(ctx, m.meta, pin)
	m.tufMu.Unlock()
	if err != nil {
		return fmt.Errorf("mirror: generation %d: %w", pin.Version, err)
	}
	m.syncMu.Lock() // not while a sync replaces the held set
	defer m.syncMu.Unlock()
	m.mu.RLock()
	next := make(map[uint64]*catalog.Catalog, len(m.held)+1)
	for g, hc := range m.held {
		next[g] = hc
	}
	m.mu.RUnlock()
	next[c.Generation] = c
	if err := m.saveHeld(next); err != nil {
		return err
	}
	m.mu.Lock()
	m.held = next
	m.mu.Unlock()
	m.log.Info().Uint64("generation", c.Generation).Msg("holding a generation a ring is open at, learned from its pin")
	return nil
}
