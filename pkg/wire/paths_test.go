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

func TestTUFName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"timestamp.json": true, "1.root.json": true, "12.snapshot.json": true, "3.targets.json": true,
		"7.security.json": true, "2.rest-bin-0f.json": true, "999999999999999999.root.json": true,
		"0.root.json": false, "root.json": false, "1.Root.json": false, "1.-x.json": false, "snapshot.json": false,
		"../1.root.json": false, "1.root.json/": false, "timestamp.json.bak": false, "1..json": false,
		"1234567890123456789.root.json": true, "12345678901234567890.root.json": false,
	} {
		if got := TUFName(name); got != want {
			t.Errorf("TUFName(%q) = %v, want %v", name, got, want)
		}
	}
	if TUFPath("timestamp.json") != "/-/tuf/timestamp.json" {
		t.Error("TUFPath")
	}
}
