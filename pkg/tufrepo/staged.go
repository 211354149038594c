// Signatures from other machines: sign a staged file, combine copies
// signed apart, commit a staged change after checking its thresholds.
package tufrepo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/internal/atomicfile"
)

// maxMetaFile bounds a metadata file read by sign, combine and commit.
const maxMetaFile = 64 << 20

func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	if st.Size() > maxMetaFile {
		return nil, fmt.Errorf("tufrepo: %s: %d bytes, more than a metadata file may have (%d)", path, st.Size(), maxMetaFile)
	}
	return os.ReadFile(path)
}

// metaType is the "_type" of a metadata file.
func metaType(b []byte) (string, error) {
	var env struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return "", err
	}
	switch env.Signed.Type {
	case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return env.Signed.Type, nil
	}
	return "", fmt.Errorf("not TUF metadata (_type %q)", env.Signed.Type)
}

// resign parses b as metadata of its type, lets f change its signatures
// (sign adds the ring's) and returns the file re-encoded.
func resign(b []byte, f func(sigs *[]metadata.Signature, sign func(*KeyRing, []string) error) error) ([]byte, error) {
	typ, err := metaType(b)
	if err != nil {
		return nil, err
	}
	switch typ {
	case metadata.ROOT:
		return resignTyped(metadata.Root(), b, f)
	case metadata.TARGETS:
		return resignTyped(metadata.Targets(), b, f)
	case metadata.SNAPSHOT:
		return resignTyped(metadata.Snapshot(), b, f)
	default:
		return resignTyped(metadata.Timestamp(), b, f)
	}
}

func resignTyped[T metadata.Roles](m *metadata.Metadata[T], b []byte, f func(sigs *[]metadata.Signature, sign func(*KeyRing, []string) error) error) ([]byte, error) {
	if _, err := m.FromBytes(b); err != nil {
		return nil, err
	}
	sign := func(r *KeyRing, ids []string) error {
		_, _, err := signWith(r, m, ids)
		return err
	}
	if err := f(&m.Signatures, sign); err != nil {
		return nil, err
	}
	out, _, err := signWith(NewKeyRing(), m, nil)
	return out, err
}

// SignFile adds the signatures of ring's keys to the metadata file path
// (in place): every key of the ring when the file is not part of a staged
// change, only the keys its role lists when the staging manifest beside
// it names it. It returns the key IDs it signed with.
func SignFile(path string, ring *KeyRing) ([]string, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	ids := ring.IDs()
	if m, err := readManifest(filepath.Dir(path)); err == nil {
		i := slices.IndexFunc(m.Files, func(f stagedEntry) bool { return f.Name == filepath.Base(path) })
		if i >= 0 {
			ids = slices.DeleteFunc(ids, func(id string) bool { return !listed(m.Files[i].Signers, id) })
		}
	}
	var signed []string
	out, err := resign(b, func(sigs *[]metadata.Signature, sign func(*KeyRing, []string) error) error {
		before := slices.Clone(*sigs)
		if err := sign(ring, ids); err != nil {
			return err
		}
		for _, s := range *sigs {
			if !signedBy(before, s.KeyID) {
				signed = append(signed, s.KeyID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tufrepo: sign %s: %w", path, err)
	}
	if len(signed) == 0 {
		return nil, nil
	}
	return signed, atomicfile.WriteFile(path, out, 0o644)
}

// SignStaged signs every file of the staged change in dir whose role lists
// a key of ring, and returns how many files it signed.
func SignStaged(dir string, ring *KeyRing) (int, error) {
	m, err := readManifest(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range m.Files {
		ids, err := SignFile(filepath.Join(dir, f.Name), ring)
		if err != nil {
			return n, err
		}
		if len(ids) > 0 {
			n++
		}
	}
	return n, nil
}

func listed(sets []signerSet, id string) bool {
	return slices.ContainsFunc(sets, func(s signerSet) bool { return slices.Contains(s.KeyIDs, id) })
}

// Combine merges the signatures of copies of one metadata file signed
// apart: their signed parts must be identical. It writes the result to
// out atomically.
func Combine(out string, files []string) error {
	if len(files) < 1 {
		return fmt.Errorf("tufrepo: combine: no files")
	}
	var signedPart []byte
	var all []metadata.Signature
	for _, f := range files {
		b, err := readBounded(f)
		if err != nil {
			return err
		}
		var env struct {
			Signed     json.RawMessage      `json:"signed"`
			Signatures []metadata.Signature `json:"signatures"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			return fmt.Errorf("tufrepo: combine %s: %w", f, err)
		}
		if _, err := metaType(b); err != nil {
			return fmt.Errorf("tufrepo: combine %s: %w", f, err)
		}
		if signedPart == nil {
			signedPart = env.Signed
		} else if !bytes.Equal(signedPart, env.Signed) {
			return fmt.Errorf("tufrepo: combine: %s signs other content than %s", f, files[0])
		}
		for _, s := range env.Signatures {
			if !signedBy(all, s.KeyID) {
				all = append(all, s)
			}
		}
	}
	first, _ := readBounded(files[0])
	merged, err := resign(first, func(sigs *[]metadata.Signature, _ func(*KeyRing, []string) error) error {
		*sigs = all
		return nil
	})
	if err != nil {
		return fmt.Errorf("tufrepo: combine: %w", err)
	}
	return atomicfile.WriteFile(out, merged, 0o644)
}

func readManifest(dir string) (*manifest, error) {
	b, err := readBounded(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	for _, f := range m.Files {
		if f.Name != TimestampFile && !versionedName.MatchString(f.Name) {
			return nil, fmt.Errorf("tufrepo: %s names %q, not a metadata file", ManifestFile, f.Name)
		}
	}
	return &m, nil
}
