package mirror

// The rollout gates (issue 15) as a relay follows them: fetched from the
// upstream like the rest of the tree's metadata and verified by the
// relay's TUF client with the rollout role of the root it trusts.

import (
	"context"
	"fmt"

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
