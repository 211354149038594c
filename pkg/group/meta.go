package group

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"

	"github.com/relayd/relayd/pkg/admindoc"
)

// Meta is what a relay tells its group about itself, carried in
// memberlist's node metadata (at most memberlist.MetaMaxSize = 512 bytes);
// /v1/members shows it as it is, so it is declared in admindoc.
type Meta = admindoc.MemberMeta

// ErrMetaTooLarge: the encoded metadata exceeds memberlist's limit.
var ErrMetaTooLarge = errors.New("group: node metadata too large")

// EncodeMeta writes m compactly, failing if it does not fit in limit bytes.
func EncodeMeta(m Meta, limit int) ([]byte, error) {
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
