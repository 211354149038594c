package node

import (
	"reflect"
	"slices"
	"testing"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/group"
)

// The admin documents the node fills field by field (most are declared
// once in admindoc and used by their parts directly) have the fields of
// the values they show: a field added to a part's view without the
// document fails here instead of going missing from /v1.
func TestAdminDocumentsFollowTheParts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ part, doc any }{
		{group.Member{}, admin.Member{}},
	} {
		pt, dt := reflect.TypeOf(tc.part), reflect.TypeOf(tc.doc)
		if p, d := fields(pt), fields(dt); !slices.Equal(p, d) {
			t.Errorf("%s has fields %v, the document %s %v", pt, p, dt, d)
		}
	}
}

// fields lists a struct's field names and JSON tags.
func fields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		out = append(out, f.Name+" "+f.Tag.Get("json"))
	}
	return out
}
