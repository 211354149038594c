// The catalog as TUF targets: what relayd adds to a target's length and
// hashes, and the two conversions. The publisher (pkg/tufrepo) and the
// verifier (pkg/tufclient) both go through here, so the signed form of an
// object has one definition.
package catalog

import (
	"encoding/json"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/digest"
)

// Custom is the custom data of every target relayd publishes: what the
// catalog carries besides length and sha256.
type Custom struct {
	Kind     string `json:"kind"`
	Platform string `json:"platform,omitempty"`
	Version  string `json:"version,omitempty"`
}

// TargetFile is the TUF target entry for o: its length, its sha256 and
// Custom.
func TargetFile(o Object) (*metadata.TargetFiles, error) {
	custom, err := json.Marshal(Custom{Kind: o.Kind, Platform: o.Platform, Version: o.Version})
	if err != nil {
		return nil, fmt.Errorf("catalog: %s: %w", o.Path, err)
	}
	raw := json.RawMessage(custom)
	return &metadata.TargetFiles{
		Length: o.Size,
		Hashes: metadata.Hashes{"sha256": o.Digest[:]},
		Path:   o.Path,
		Custom: &raw,
	}, nil
}

// FromTarget is the object a verified TUF target at path describes. A
// target without a sha256 is refused (relayd addresses its store by it);
// one without relayd's custom data is classified by its path (Classify),
// so targets published by other TUF tools are usable too.
func FromTarget(path string, t *metadata.TargetFiles) (Object, error) {
	h, ok := t.Hashes["sha256"]
	if !ok || len(h) != len(digest.Digest{}) {
		return Object{}, fmt.Errorf("%w: target %q has no sha256", ErrMalformed, path)
	}
	o := Object{Path: path, Size: t.Length, Digest: digest.Digest(h)}
	if t.Custom != nil {
		var c Custom
		if err := json.Unmarshal(*t.Custom, &c); err != nil {
			return Object{}, fmt.Errorf("%w: target %q: custom: %w", ErrMalformed, path, err)
		}
		o.Kind, o.Platform, o.Version = c.Kind, c.Platform, c.Version
	}
	if o.Kind == "" {
		o.Kind, o.Platform, o.Version = Classify(path)
	}
	return o, nil
}
