package group

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Meta is what a relay tells its group about itself, carried in
// memberlist's node metadata (at most memberlist.MetaMaxSize = 512 bytes).
type Meta struct {
	// Group the relay belongs to.
	Group string `json:"g"`
	// Mode is origin, mirror or proxy.
	Mode string `json:"m"`
	// URL is the relay's content base URL, as agents and peers reach it.
	URL string `json:"u"`
	// Generation is the catalog generation it serves (0: none).
	Generation uint64 `json:"n,omitempty"`
	// Ready is false while it is syncing or its disk is failing.
	Ready bool `json:"r,omitempty"`
}

// ErrMetaTooLarge: the encoded metadata exceeds memberlist's limit.
var ErrMetaTooLarge = errors.New("group: node metadata too large")

// Encode writes m compactly, failing if it does not fit in limit bytes.
func (m Meta) Encode(limit int) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("group: encode meta: %w", err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d (shorten the group name or content URL)", ErrMetaTooLarge, len(b), limit)
	}
	return b, nil
}

// DecodeMeta reads metadata sent by a peer.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > memberlist.MetaMaxSize {
		return m, ErrMetaTooLarge
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("group: decode meta: %w", err)
	}
	if m.Group == "" {
		return m, errors.New("group: meta without a group")
	}
	return m, nil
}
