// The canonical form of the targets roles relayd writes most (bins and
// small leaf roles), encoded directly: cjson (what go-tuf signs and
// verifies) marshals, re-parses and re-encodes every target, which cost
// more than hashing the files. canonicalTargets produces the same bytes
// for the one shape relayd writes, and declines anything else (the
// caller then uses cjson); TestCanonicalTargetsMatchesCJSON holds it to
// cjson's output.
package tufrepo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/catalog"
)

// canonicalTargets is cjson.EncodeCanonical(t) for a targets role without
// delegations or unknown fields whose targets carry only a sha256 and
// relayd's custom data (catalog.Custom as catalog.TargetFile encodes it);
// ok is false for any other shape.
func canonicalTargets(t *metadata.TargetsType) (out []byte, ok bool) {
	if t.Delegations != nil || len(t.UnrecognizedFields) != 0 || !plain(t.Type) || !plain(t.SpecVersion) {
		return nil, false
	}
	exp, err := t.Expires.MarshalJSON()
	if err != nil || bytes.ContainsAny(exp, `\`) {
		return nil, false
	}
	paths := make([]string, 0, len(t.Targets))
	for p := range t.Targets {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	b := make([]byte, 0, 64+200*len(paths))
	b = append(b, `{"_type":`...)
	b = appendString(b, t.Type)
	b = append(b, `,"expires":`...)
	b = append(b, exp...)
	b = append(b, `,"spec_version":`...)
	b = appendString(b, t.SpecVersion)
	b = append(b, `,"targets":{`...)
	for i, p := range paths {
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = appendTarget(b, p, t.Targets[p]); !ok {
			return nil, false
		}
	}
	b = append(b, `},"version":`...)
	b = strconv.AppendInt(b, t.Version, 10)
	return append(b, '}'), true
}

// appendTarget appends "path":{"custom":…,"hashes":{"sha256":…},"length":…}.
func appendTarget(b []byte, p string, tf *metadata.TargetFiles) ([]byte, bool) {
	h, ok := tf.Hashes["sha256"]
	if !ok || len(tf.Hashes) != 1 || len(tf.UnrecognizedFields) != 0 || !utf8.ValidString(p) {
		return nil, false
	}
	b = appendString(b, p)
	b = append(b, `:{`...)
	if tf.Custom != nil {
		c, ok := relaydCustom(*tf.Custom)
		if !ok {
			return nil, false
		}
		b = append(b, `"custom":{"kind":`...)
		b = appendString(b, c.Kind)
		if c.Platform != "" {
			b = append(b, `,"platform":`...)
			b = appendString(b, c.Platform)
		}
		if c.Version != "" {
			b = append(b, `,"version":`...)
			b = appendString(b, c.Version)
		}
		b = append(b, "},"...)
	}
	b = append(b, `"hashes":{"sha256":"`...)
	b = hex.AppendEncode(b, h)
	b = append(b, `"},"length":`...)
	b = strconv.AppendInt(b, tf.Length, 10)
	return append(b, '}'), true
}

// relaydCustom decodes custom data that is exactly what catalog.TargetFile
// writes.
func relaydCustom(raw []byte) (catalog.Custom, bool) {
	if c, ok := plainCustom(raw); ok {
		return c, true
	}
	var c catalog.Custom
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return c, false
	}
	again, err := json.Marshal(c)
	if err != nil || !bytes.Equal(again, raw) || !utf8.ValidString(c.Kind+c.Platform+c.Version) {
		return c, false
	}
	return c, true
}

// appendString is cjson's string form: only backslash and double quote
// are escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	if !strings.ContainsAny(s, `\"`) {
		b = append(b, s...)
	} else {
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' || s[i] == '"' {
				b = append(b, '\\')
			}
			b = append(b, s[i])
		}
	}
	return append(b, '"')
}

func plain(s string) bool { return utf8.ValidString(s) }

// plainCustom reads {"kind":"K"[,"platform":"P"][,"version":"V"]} whose
// strings hold only printable ASCII that JSON does not escape (the common
// case, without a decoder); ok is false for anything else.
func plainCustom(raw []byte) (c catalog.Custom, ok bool) {
	rest, ok := bytes.CutPrefix(raw, []byte(`{"kind":"`))
	if !ok {
		return c, false
	}
	if c.Kind, rest, ok = plainString(rest); !ok {
		return c, false
	}
	if r, found := bytes.CutPrefix(rest, []byte(`,"platform":"`)); found {
		if c.Platform, rest, ok = plainString(r); !ok || c.Platform == "" {
			return c, false
		}
	}
	if r, found := bytes.CutPrefix(rest, []byte(`,"version":"`)); found {
		if c.Version, rest, ok = plainString(r); !ok || c.Version == "" {
			return c, false
		}
	}
	return c, string(rest) == "}"
}

// plainString reads a string up to its closing quote, refusing any byte
// JSON would escape or that needs a thought (non-ASCII, <, >, &).
func plainString(b []byte) (s string, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return string(b[:i]), b[i+1:], true
		case c < 0x20 || c >= 0x7f || c == '\\' || c == '<' || c == '>' || c == '&':
			return "", nil, false
		}
	}
	return "", nil, false
}
