package wire

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Event kinds: the SSE event names of EventsPath.
const (
	// KindCatalog: a new catalog generation is live (data: Generation).
	KindCatalog = "catalog"
	// KindRelays: the group's relays changed (data: the Relays document).
	KindRelays = "relays"
	// KindReplaced is the last event of a stream that a newer stream with
	// the same identity (agent id, or child relay group and node) from the
	// same address replaced (data: Replaced). The reader should not
	// reconnect at once: the other holder of its identity is connected.
	KindReplaced = "replaced"
)

// Replaced is the data of a KindReplaced event.
type Replaced struct {
	Reason string `json:"reason"`
}

// Relays is the RelaysPath document, and the data of a KindRelays event:
// a group's healthy relays.
type Relays struct {
	Group  string  `json:"group"`
	Relays []Relay `json:"relays"`
}

// Relay is one entry of Relays.
type Relay struct {
	Name       string `json:"name"`
	URL        string `json:"url"`
	Mode       string `json:"mode"`
	Generation uint64 `json:"generation"` // its live catalog generation; 0: none or unknown
}

// MaxRelaysSize caps the Relays document DecodeRelays reads, in bytes.
const MaxRelaysSize = 1 << 20

// DecodeRelays reads a Relays document from r (a response body) and
// refuses one larger than MaxRelaysSize: a relay list is read from
// relays that are not trusted with the reader's memory.
func DecodeRelays(r io.Reader) (Relays, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRelaysSize+1))
	if err != nil {
		return Relays{}, fmt.Errorf("read %s: %w", RelaysPath, err)
	}
	if len(b) > MaxRelaysSize {
		return Relays{}, fmt.Errorf("%s larger than %d bytes", RelaysPath, MaxRelaysSize)
	}
	var doc Relays
	if err := json.Unmarshal(b, &doc); err != nil {
		return Relays{}, fmt.Errorf("%s: %w", RelaysPath, err)
	}
	return doc, nil
}

// Generation is the data of a KindCatalog event.
type Generation struct {
	Generation uint64    `json:"generation"`
	Digest     string    `json:"digest,omitempty"`   // of the catalog file: its ETag without quotes
	Published  time.Time `json:"published,omitzero"` // when the origin signed it
}

// ParseGeneration decodes the data of a KindCatalog event (one line of
// JSON, already bounded by the event reader).
func ParseGeneration(data []byte) (Generation, error) {
	var g Generation
	if err := json.Unmarshal(data, &g); err != nil {
		return g, fmt.Errorf("%s event data: %w", KindCatalog, err)
	}
	if g.Generation == 0 {
		return g, fmt.Errorf("%s event data without a generation", KindCatalog)
	}
	return g, nil
}
