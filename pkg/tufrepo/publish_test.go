package tufrepo

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestPublishVerifiedByGoTUF(t *testing.T) {
	f := newFixture(t)
	f.init()
	f.write("security/2026/a.rpm", "a")
	f.write("software/linux-amd64/1.0/x.tar.gz", "x")
	f.write("docs/readme", "r")
	res := f.publish()
	if !res.Changed || res.Generation != 1 || res.Files != 3 {
		t.Fatalf("first publish: %+v", res)
	}
	u := f.client()
	f.verifyTarget(u, "security/2026/a.rpm", "a")
	f.verifyTarget(u, "software/linux-amd64/1.0/x.tar.gz", "x")
	if _, err := u.GetTargetInfo("nothere"); err == nil {
		t.Fatal("a path not published was found")
	}
}

func TestPublishUnchangedWritesNothing(t *testing.T) {
	f := newFixture(t)
	f.init()
	f.write("a", "a")
	f.publish()
	before := f.files()
	res := f.publish()
	if res.Changed || res.Generation != 1 || len(res.Written) != 0 {
		t.Fatalf("unchanged publish: %+v", res)
	}
	if after := f.files(); !maps.Equal(before, after) {
		t.Fatalf("an unchanged publish touched files:\nbefore %v\nafter  %v", before, after)
	}
}

func TestPublishOneChangeRewritesOneBin(t *testing.T) {
	f := newFixture(t)
	f.opt.MaxDirectTargets = 8
	f.init()
	for i := range 200 {
		f.write(fmt.Sprintf("pool/f%03d", i), fmt.Sprint(i))
	}
	f.publish()
	f.write("pool/f007", "changed")
	res := f.publish()
	if res.Generation != 2 {
		t.Fatalf("generation %d, want 2", res.Generation)
	}
	var names []string
	for _, w := range res.Written {
		names = append(names, w)
	}
	slices.Sort(names)
	if len(names) != 3 || !strings.HasPrefix(names[0], "2.rest-bin-") || names[1] != "2.snapshot.json" || names[2] != "timestamp.json" {
		t.Fatalf("wrote %v, want one bin, the snapshot and the timestamp", names)
	}
	u := f.client()
	f.verifyTarget(u, "pool/f007", "changed")
	f.verifyTarget(u, "pool/f100", "100")
}

func TestExpandPaths(t *testing.T) {
	got, err := ExpandPaths([]string{"security/**"})
	if err != nil || len(got) != MaxDepth-1 || got[0] != "security/*" || got[1] != "security/*/*" {
		t.Fatalf("got %v, %v", got, err)
	}
	if all, _ := ExpandPaths([]string{"**"}); len(all) != MaxDepth || all[0] != "*" {
		t.Fatalf("** → %v", all)
	}
	for _, bad := range []string{"", "/abs", "a/**/b", "[x"} {
		if _, err := ExpandPaths([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
