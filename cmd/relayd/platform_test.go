package main

import (
	"strings"
	"testing"

	"github.com/relayd/relayd/pkg/node"
)

func TestPlatformNote(t *testing.T) {
	for _, tc := range []struct {
		goos, mode string
		refused    bool
		note       string // "" for none
	}{
		{"linux", node.ModeProxy, false, ""},
		{"linux", node.ModeMirror, false, ""},
		{"darwin", node.ModeProxy, false, "no disk preallocation"},
		{"darwin", node.ModeOrigin, false, "no sendfile for readers of a fill"},
		{"windows", node.ModeProxy, true, ""},
		{"windows", node.ModeMirror, true, ""},
		{"windows", node.ModeOrigin, false, "no SIGHUP"},
	} {
		note, err := platformNote(tc.goos, tc.mode)
		if tc.refused {
			if err == nil || !strings.Contains(err.Error(), "not available on Windows") || !strings.Contains(err.Error(), "relayd agent sync|watch") {
				t.Errorf("%s %s: %v; want a refusal that names what works there", tc.goos, tc.mode, err)
			}
			continue
		}
		if err != nil || (tc.note == "") != (note == "") || !strings.Contains(note, tc.note) {
			t.Errorf("%s %s: %q, %v; want a note with %q", tc.goos, tc.mode, note, err, tc.note)
		}
	}
}
