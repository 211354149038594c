package wire

import "testing"

func TestReserved(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"-": true, "-/": true, "-/catalog": true, "-/blob/ab": true,
		"": false, "a/-/b": false, "-x": false, "--/y": false, "x": false,
	} {
		if got := Reserved(key); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", key, got, want)
		}
	}
	if !IsAPI(EventsPath) || IsAPI("/a/-/b") {
		t.Error("IsAPI")
	}
	if got := BlobPath("ab"); got != "/-/blob/ab" {
		t.Errorf("BlobPath = %q", got)
	}
}
