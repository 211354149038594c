// The origin's side of the tree's TUF repository: it announces each new
// timestamp `relayd publish` (or the re-sign) writes, and keeps the
// timestamp fresh with the online timestamp key.
package origin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/clock"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

// maxTimestamp bounds the timestamp file the origin reads to announce it:
// a few hundred bytes per signature.
const maxTimestamp = 1 << 20

// Timestamp describes the timestamp file an origin serves. Nothing of it
// is verified here: it only says that a new one is there (children verify
// what they fetch).
type Timestamp struct {
	// Generation is the snapshot version it names.
	Generation uint64
	// Version is the timestamp's own version; Expires its expiry.
	Version int64
	Expires time.Time
	// Digest is the sha256 of the file.
	Digest digest.Digest
}

// peekTimestamp reads the generation, version and expiry of a timestamp
// file without verifying it.
func peekTimestamp(b []byte) (Timestamp, error) {
	var doc struct {
		Signed struct {
			Type    string    `json:"_type"`
			Version int64     `json:"version"`
			Expires time.Time `json:"expires"`
			Meta    map[string]struct {
				Version uint64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return Timestamp{}, fmt.Errorf("origin: timestamp.json: %w", err)
	}
	snap, ok := doc.Signed.Meta["snapshot.json"]
	if doc.Signed.Type != "timestamp" || !ok || snap.Version == 0 {
		return Timestamp{}, errors.New("origin: timestamp.json names no snapshot version")
	}
	return Timestamp{Generation: snap.Version, Version: doc.Signed.Version, Expires: doc.Signed.Expires, Digest: digest.FromBytes(b)}, nil
}

// timestampFile is where the tree keeps its timestamp, relative to the root.
var timestampFile = filepath.FromSlash(strings.TrimPrefix(wire.TUFPath(wire.TimestampName), "/"))

// ReadTimestamp reads and peeks the tree's timestamp file.
func (o *Origin) ReadTimestamp() (Timestamp, error) {
	b, err := o.readTimestamp()
	if err != nil {
		return Timestamp{}, err
	}
	return peekTimestamp(b)
}

// readTimestamp reads timestamp.json, at most maxTimestamp bytes.
func (o *Origin) readTimestamp() ([]byte, error) {
	f, err := o.root.Open(timestampFile)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTimestamp+1))
	if err != nil {
		return nil, fmt.Errorf("origin: read timestamp.json: %w", err)
	}
	if len(b) > maxTimestamp {
		return nil, fmt.Errorf("origin: timestamp.json is larger than %d bytes", maxTimestamp)
	}
	return b, nil
}

func (o *Origin) WatchTimestamp(ctx context.Context, interval time.Duration, log zerolog.Logger, fn func(Timestamp)) {
	// The file is small and bounded: it is read and hashed at every tick.
	// Size and modification time would miss a same-size file renamed in
	// within the file system's clock tick.
	var last digest.Digest
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if b, err := o.readTimestamp(); err == nil {
			if d := digest.FromBytes(b); d != last {
				last = d
				if ts, err := peekTimestamp(b); err != nil {
					log.Warn().Err(err).Msg("timestamp.json does not parse; not announced")
				} else {
					fn(ts)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Resigner keeps the tree's timestamp fresh: it re-signs it (a new
// timestamp version of the same snapshot) with the online timestamp key
// when less than half its lifetime is left.
type Resigner struct {
	// Tree is the published directory (the origin's root).
	Tree string
	// Key holds the online timestamp key.
	Key *tufrepo.KeyRing
	// Expiry is the lifetime of a new timestamp. Default 24h.
	Expiry time.Duration
	// Every is how often the expiry is checked. Default 1m.
	Every time.Duration
	// Clock tells the time and schedules the checks.
	Clock clock.Timers
	Log   zerolog.Logger
}

// Run checks at once and then every Every until ctx ends.
func (r *Resigner) Run(ctx context.Context, o *Origin) {
	if r.Expiry <= 0 {
		r.Expiry = 24 * time.Hour
	}
	if r.Every <= 0 {
		r.Every = time.Minute
	}
	for {
		if err := r.Check(o); err != nil {
			r.Log.Error().Err(err).Msg("timestamp re-sign failed; children refuse the metadata once it expires")
		}
		if !clock.Sleep(ctx, r.Clock, r.Every) {
			return
		}
	}
}

// Check re-signs the timestamp if less than half of Expiry is left (or it
// has expired).
func (r *Resigner) Check(o *Origin) error {
	did, err := tufrepo.RefreshTimestamp(r.Tree, r.Key, r.Expiry, r.Clock.Now())
	if err != nil {
		return fmt.Errorf("origin: re-sign the timestamp: %w", err)
	}
	if !did {
		return nil
	}
	nts, err := o.ReadTimestamp()
	if err != nil {
		return fmt.Errorf("origin: read the re-signed timestamp: %w", err)
	}
	r.Log.Info().Uint64("generation", nts.Generation).Int64("version", nts.Version).Time("expires", nts.Expires).
		Msg("timestamp re-signed by the origin")
	return nil
}
