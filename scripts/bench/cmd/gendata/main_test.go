package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMixObjectsDeterministicAndInRange(t *testing.T) {
	a, b := mixObjects(1, 1000, 4<<10, 1<<20), mixObjects(1, 1000, 4<<10, 1<<20)
	small, large := 0, 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("object %d differs between runs: %v vs %v", i, a[i], b[i])
		}
		if a[i].size < 4<<10 || a[i].size > 1<<20 {
			t.Fatalf("object %d size %d out of range", i, a[i].size)
		}
		// log-uniform: [4 KiB, 16 KiB) and [256 KiB, 1 MiB] each hold a quarter
		switch {
		case a[i].size < 16<<10:
			small++
		case a[i].size >= 256<<10:
			large++
		}
	}
	for name, n := range map[string]int{"small": small, "large": large} {
		if n < 200 || n > 300 {
			t.Errorf("%s objects: %d of 1000, want about 250 (log-uniform)", name, n)
		}
	}
}

func TestEnsureWritesSameBytes(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	o := object{"x.bin", 100_003} // not a multiple of 8
	for _, d := range []string{d1, d2} {
		if n, err := ensure(d, o, 7, false); err != nil || n != o.size {
			t.Fatalf("ensure: n=%d err=%v", n, err)
		}
	}
	b1, _ := os.ReadFile(filepath.Join(d1, "x.bin"))
	b2, _ := os.ReadFile(filepath.Join(d2, "x.bin"))
	if int64(len(b1)) != o.size || !bytes.Equal(b1, b2) {
		t.Fatalf("contents differ or wrong size (%d)", len(b1))
	}
	if n, err := ensure(d1, o, 7, true); err != nil || n != 0 {
		t.Fatalf("reuse: rewrote %d bytes, err=%v", n, err)
	}
}

func TestTreeObjectsExactTotalAndLayout(t *testing.T) {
	const n, total = 10_000, int64(1 << 30)
	a, b := treeObjects(1, n, total), treeObjects(1, n, total)
	if len(a) != n {
		t.Fatalf("%d objects, want %d", len(a), n)
	}
	var sum int64
	seen := map[string]bool{}
	kinds := map[string]int{}
	for i, o := range a {
		if o != b[i] {
			t.Fatalf("object %d differs between runs: %v vs %v", i, o, b[i])
		}
		if seen[o.path] {
			t.Fatalf("duplicate path %s", o.path)
		}
		seen[o.path] = true
		if o.size < 1 {
			t.Fatalf("%s: size %d", o.path, o.size)
		}
		sum += o.size
		kind, _, _ := strings.Cut(o.path, "/")
		kinds[kind]++
		if kind == "software" && strings.Count(o.path, "/") != 3 {
			t.Errorf("%s: not software/<platform>/<version>/<file>", o.path)
		}
	}
	if sum != total {
		t.Fatalf("sizes sum to %d, want %d", sum, total)
	}
	if len(kinds) != 3 || kinds["security"] < n/10 || kinds["software"] < n/2 || kinds["other"] < n/5 {
		t.Errorf("kinds %v: want about 15 %% security, 60 %% software, 25 %% other", kinds)
	}
}

func TestPruneKeepsListedAndCatalogDir(t *testing.T) {
	d := t.TempDir()
	objs := []object{{"a/x.bin", 3}}
	if err := mkdirs(d, objs); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/x.bin", "a/stale.bin", "-/catalog"} {
		os.MkdirAll(filepath.Dir(filepath.Join(d, p)), 0o755)
		os.WriteFile(filepath.Join(d, p), []byte("abc"), 0o644)
	}
	if err := prune(d, objs); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a/x.bin": true, "a/stale.bin": false, "-/catalog": true} {
		if _, err := os.Stat(filepath.Join(d, p)); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", p, err == nil, want)
		}
	}
}
