package wire

import (
	"errors"
	"fmt"
	"time"
)

// Report is what a relay tells its parents about itself (POST
// ReportPath), with the reports its own children sent it (its subtree).
type Report struct {
	Group      string `json:"group"`
	Node       string `json:"node"`
	Mode       string `json:"mode"`
	URL        string `json:"url,omitempty"`
	Generation uint64 `json:"generation"`
	// Ready is false while the relay should not get traffic; Problem says
	// why (no generation yet, disk full).
	Ready   bool   `json:"ready"`
	Problem string `json:"problem,omitempty"`
	// Upstream is what the relay fetches from.
	Upstream []string    `json:"upstream,omitempty"`
	Cache    *CacheStats `json:"cache,omitempty"`
	// Agents is how many agents hold an event stream open to it.
	Agents int `json:"agents"`
	// Outcomes sums up what this relay's own agents reported of their
	// installs (its children report theirs); nil from a relay that takes
	// no outcomes.
	Outcomes *Outcomes `json:"outcomes,omitempty"`
	// MetadataVerified is when the relay last verified the tree's TUF
	// metadata, MetadataExpires when the metadata it serves expires (the
	// earliest expiry of its trusted set): a relay past it keeps serving
	// the objects it holds, and the tree shows "expired since". Zero for
	// a relay that verifies nothing (a plain proxy).
	MetadataVerified time.Time `json:"metadata_verified,omitzero"`
	MetadataExpires  time.Time `json:"metadata_expires,omitzero"`
	// Sent is when the relay made the report (its clock).
	Sent     time.Time `json:"sent"`
	Children []Report  `json:"children,omitempty"`
}

// CacheStats is the cache summary in a report.
type CacheStats struct {
	Objects       int64 `json:"objects"`
	Bytes         int64 `json:"bytes"`
	Hits          int64 `json:"hits"`
	Misses        int64 `json:"misses"`
	UpstreamBytes int64 `json:"upstream_bytes"`
}

// Limits on a report: it may describe a large subtree, but not an
// unbounded one. A parent holding many reports keeps MaxReportNodes
// relays in all (pkg/hierarchy's Tree).
const (
	// MaxReportDepth is the deepest level of children below a report.
	MaxReportDepth = 16
	// MaxReportNodes is the most relays one report (subtree) holds.
	MaxReportNodes = 20000
	// MaxNameLen bounds a group or node name, in bytes.
	MaxNameLen = 256
)

// ErrBadReport: a report is malformed or too large.
var ErrBadReport = errors.New("bad report")

// Validate checks a report and its subtree.
func (r *Report) Validate() error {
	_, err := r.Size()
	return err
}

// Size checks a report and returns how many relays it holds, its own
// included.
func (r *Report) Size() (int, error) {
	n := 0
	return n, r.validate(0, &n)
}

func (r *Report) validate(depth int, n *int) error {
	*n++
	switch {
	case depth > MaxReportDepth:
		return fmt.Errorf("%w: deeper than %d levels", ErrBadReport, MaxReportDepth)
	case *n > MaxReportNodes:
		return fmt.Errorf("%w: more than %d relays", ErrBadReport, MaxReportNodes)
	case r.Group == "" || r.Node == "":
		return fmt.Errorf("%w: group and node are required", ErrBadReport)
	case len(r.Group) > MaxNameLen || len(r.Node) > MaxNameLen || len(r.URL) > 2048 || len(r.Problem) > 1024:
		return fmt.Errorf("%w: a name is too long", ErrBadReport)
	}
	if r.Outcomes != nil {
		if err := r.Outcomes.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadReport, err)
		}
	}
	for i := range r.Children {
		if err := r.Children[i].validate(depth+1, n); err != nil {
			return err
		}
	}
	return nil
}
