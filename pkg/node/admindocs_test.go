package node

import (
	"reflect"
	"slices"
	"testing"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/group"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/wire"
)

// The admin documents the node fills field by field (the others are
// struct conversions, checked by the compiler) have the fields of the
// values they show: a field added to a part's view without the document
// fails here instead of going missing from /v1.
func TestAdminDocumentsFollowTheParts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ part, doc any }{
		{group.Member{}, admin.Member{}},
		{hierarchy.GroupView{}, admin.GroupView{}},
		{hierarchy.MemberView{}, admin.MemberView{}},
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

// The tree document shows what the view holds, at every depth.
func TestGroupDoc(t *testing.T) {
	t.Parallel()
	v := hierarchy.GroupView{Group: "hq", Members: []hierarchy.MemberView{{Node: "r1", Lag: 2, Ahead: true, Cache: &wire.CacheStats{Hits: 4}}},
		Children: []hierarchy.GroupView{{Group: "b", Members: []hierarchy.MemberView{{Node: "b1", Age: "5s", Problem: "gone"}}}}}
	got := groupDoc(v)
	want := admin.GroupView{Group: "hq", Members: []admin.MemberView{{Node: "r1", Lag: 2, Ahead: true, Cache: &admin.ReportedCache{Hits: 4}}},
		Children: []admin.GroupView{{Group: "b", Members: []admin.MemberView{{Node: "b1", Age: "5s", Problem: "gone"}}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
