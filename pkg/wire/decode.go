// Reading a child's report off the network: a walk over JSON tokens that
// stops at the relay, depth and string limits as it reads, so a hostile
// body costs what the limits allow, not what it is.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on single values of a report, beyond MaxReportNodes and
// MaxReportDepth.
const (
	// maxToken bounds the raw bytes of one JSON string or number (an
	// escaped URL of 2048 bytes fits).
	maxToken = 16 << 10
	// maxUpstreams bounds a relay's upstream list.
	maxUpstreams = 64
	// maxUnknownDepth bounds how deep a field this relay does not know
	// may nest (a newer child may report more; it is skipped).
	maxUnknownDepth = 8
	// maxAgents and maxFigure clamp the counts a report claims, so that
	// summing them over MaxReportNodes relays cannot overflow an int64.
	maxAgents = 1 << 24
	maxFigure = 1 << 47
)

// DecodeReport reads one report from r, token by token, and stops at the
// first limit it crosses while reading: more than 20,000 relays, deeper
// than 16 levels, a string longer than 16 KiB, a name longer than allowed.
// Counts are clamped (agents to 2^24, cache figures to 2^47). The caller
// bounds the bytes (http.MaxBytesReader); an error of r is wrapped, so
// errors.As/Is find it. Unknown fields are skipped.
//
// It walks twice: the first walk checks the limits and keeps only the
// bytes it read, the second builds the report from them. A report refused
// at its 20,001st relay has then cost the ~600 KB read so far, not the
// ~4 MB of structures of 20,000 relays (which a relay's GC target of 400 %
// would turn into 20 MB of heap per decode).
//
// The bytes are kept in chunks of rawChunk, never joined, so that an
// 8 MiB body costs 8 MiB, not the 16 MiB of a doubling buffer's last
// growth plus the copy.
func DecodeReport(r io.Reader) (Report, error) {
	var raw chunks
	if _, err := walkReport(io.TeeReader(r, &raw), false); err != nil {
		return Report{}, err
	}
	if len(raw.bufs) >= collectChunks {
		// The first walk's tokens are garbage, some 3 times the body:
		// a relay runs at a GC target of 400 %, and left alone they
		// would pile up with the second walk's. (The caller decodes
		// one report at a time: one collection per large report.)
		runtime.GC()
	}
	return walkReport(&raw, true)
}

// collectChunks is the body size, in chunks (1 MiB), from which
// DecodeReport collects garbage between its walks.
const collectChunks = 16

// rawChunk is the size of the chunks DecodeReport keeps a body in.
const rawChunk = 64 << 10

// chunks is a byte queue kept in fixed-size chunks: written to the end,
// read from the front (each chunk let go once read).
type chunks struct {
	bufs [][]byte
	off  int // read offset in bufs[0]
}

func (c *chunks) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(c.bufs) == 0 || len(c.bufs[len(c.bufs)-1]) == rawChunk {
			c.bufs = append(c.bufs, make([]byte, 0, rawChunk))
		}
		last := &c.bufs[len(c.bufs)-1]
		k := copy((*last)[len(*last):rawChunk], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
	}
	return n, nil
}

func (c *chunks) Read(p []byte) (int, error) {
	for len(c.bufs) > 0 && c.off == len(c.bufs[0]) {
		c.bufs[0] = nil
		c.bufs, c.off = c.bufs[1:], 0
	}
	if len(c.bufs) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.bufs[0][c.off:])
	c.off += n
	return n, nil
}

// walkReport reads one report; it keeps the relays below the top one
// only when build is set.
func walkReport(r io.Reader, build bool) (Report, error) {
	d := &reportDecoder{dec: json.NewDecoder(&tokenLimit{r: r, max: maxToken}), build: build}
	d.dec.UseNumber()
	var rep Report
	if err := d.report(&rep, 0); err != nil {
		return Report{}, err
	}
	if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return Report{}, fmt.Errorf("%w: data after the report", ErrBadReport)
		}
		return Report{}, fmt.Errorf("%w: %w", ErrBadReport, err)
	}
	return rep, nil
}

// reportDecoder walks one report.
type reportDecoder struct {
	dec   *json.Decoder
	build bool // keep the children (else only check them)
	nodes int
}

func (d *reportDecoder) token() (json.Token, error) {
	t, err := d.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", ErrBadReport, err)
	}
	return t, nil
}

func (d *reportDecoder) delim(want json.Delim) error {
	t, err := d.token()
	if err != nil {
		return err
	}
	if t != want {
		return fmt.Errorf("%w: want %v, got %v", ErrBadReport, want, t)
	}
	return nil
}

// report reads one relay's object, its children included.
func (d *reportDecoder) report(rep *Report, depth int) error {
	d.nodes++
	switch {
	case d.nodes > MaxReportNodes:
		return fmt.Errorf("%w: more than %d relays", ErrBadReport, MaxReportNodes)
	case depth > MaxReportDepth:
		return fmt.Errorf("%w: deeper than %d levels", ErrBadReport, MaxReportDepth)
	}
	if err := d.delim('{'); err != nil {
		return err
	}
	for d.dec.More() {
		t, err := d.token()
		if err != nil {
			return err
		}
		if err := d.field(rep, t.(string), depth); err != nil {
			return err
		}
	}
	if err := d.delim('}'); err != nil {
		return err
	}
	if rep.Group == "" || rep.Node == "" {
		return fmt.Errorf("%w: group and node are required", ErrBadReport)
	}
	return nil
}

// field reads the value of one field of a relay's object.
func (d *reportDecoder) field(rep *Report, key string, depth int) error {
	var err error
	switch key {
	case "group":
		rep.Group, err = d.str(key, MaxNameLen)
	case "node":
		rep.Node, err = d.str(key, MaxNameLen)
	case "mode":
		rep.Mode, err = d.str(key, 64)
	case "url":
		rep.URL, err = d.str(key, 2048)
	case "problem":
		rep.Problem, err = d.str(key, 1024)
	case "generation":
		rep.Generation, err = d.uint(key)
	case "ready":
		rep.Ready, err = d.bool(key)
	case "agents":
		var n int64
		n, err = d.count(key, maxAgents)
		rep.Agents = int(n)
	case "sent":
		rep.Sent, err = d.time(key)
	case "metadata_verified":
		rep.MetadataVerified, err = d.time(key)
	case "metadata_expires":
		rep.MetadataExpires, err = d.time(key)
	case "upstream":
		rep.Upstream, err = d.strings(key, maxUpstreams, 2048)
	case "cache":
		rep.Cache, err = d.cache()
	case "outcomes":
		rep.Outcomes, err = d.outcomes()
	case "children":
		err = d.children(rep, depth)
	default:
		err = d.skip(0)
	}
	return err
}

// time reads an RFC 3339 time ("" or null: the zero time).
func (d *reportDecoder) time(key string) (time.Time, error) {
	s, err := d.str(key, 64)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %w", ErrBadReport, key, err)
	}
	return t, nil
}

// children reads the array of a relay's children's reports.
func (d *reportDecoder) children(rep *Report, depth int) error {
	t, err := d.token()
	if err != nil || t == nil {
		return err
	}
	if t != json.Delim('[') {
		return fmt.Errorf("%w: children: want an array", ErrBadReport)
	}
	for d.dec.More() {
		if !d.build {
			var child Report
			if err := d.report(&child, depth+1); err != nil {
				return err
			}
			continue
		}
		rep.Children = append(rep.Children, Report{})
		if err := d.report(&rep.Children[len(rep.Children)-1], depth+1); err != nil {
			return err
		}
	}
	return d.delim(']')
}

// cache reads the cache figures; null is none.
func (d *reportDecoder) cache() (*CacheStats, error) {
	t, err := d.token()
	if err != nil || t == nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, fmt.Errorf("%w: cache: want an object", ErrBadReport)
	}
	c := &CacheStats{}
	for d.dec.More() {
		k, err := d.token()
		if err != nil {
			return nil, err
		}
		var p *int64
		switch k {
		case "objects":
			p = &c.Objects
		case "bytes":
			p = &c.Bytes
		case "hits":
			p = &c.Hits
		case "misses":
			p = &c.Misses
		case "upstream_bytes":
			p = &c.UpstreamBytes
		default:
			if err := d.skip(0); err != nil {
				return nil, err
			}
			continue
		}
		if *p, err = d.count("cache."+k.(string), maxFigure); err != nil {
			return nil, err
		}
	}
	return c, d.delim('}')
}

// str reads a string of at most max bytes; null is "".
func (d *reportDecoder) str(key string, limit int) (string, error) {
	t, err := d.token()
	if err != nil || t == nil {
		return "", err
	}
	s, ok := t.(string)
	switch {
	case !ok:
		return "", fmt.Errorf("%w: %s: want a string", ErrBadReport, key)
	case len(s) > limit:
		return "", fmt.Errorf("%w: %s longer than %d bytes", ErrBadReport, key, limit)
	case !printable(s):
		return "", fmt.Errorf("%w: %s %s: a control character, invalid UTF-8 or another rune that does not print", ErrBadReport, key, strconv.QuoteToASCII(s))
	}
	return s, nil
}

// printable reports whether s holds only runes that print
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space). Control characters (terminal escapes), format runes
// (bidi overrides) and U+FFFD, which json puts for invalid UTF-8, do not.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Printable returns s with each rune that does not print replaced by
// '?', at most limit bytes: a relay's own strings, made fit for a report
// (a report holding another is refused).
func Printable(s string, limit int) string {
	if !printable(s) {
		s = strings.Map(func(r rune) rune {
			if r == utf8.RuneError || !unicode.IsPrint(r) {
				return '?'
			}
			return r
		}, s)
	}
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "")
	}
	return s
}

// strings reads an array of at most n strings of at most max bytes.
func (d *reportDecoder) strings(key string, n, limit int) ([]string, error) {
	t, err := d.token()
	if err != nil || t == nil {
		return nil, err
	}
	if t != json.Delim('[') {
		return nil, fmt.Errorf("%w: %s: want an array", ErrBadReport, key)
	}
	var out []string
	for d.dec.More() {
		if len(out) == n {
			return nil, fmt.Errorf("%w: %s: more than %d entries", ErrBadReport, key, n)
		}
		s, err := d.str(key, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, d.delim(']')
}

func (d *reportDecoder) number(key string) (json.Number, error) {
	t, err := d.token()
	if err != nil {
		return "", err
	}
	n, ok := t.(json.Number)
	if !ok {
		return "", fmt.Errorf("%w: %s: want a number", ErrBadReport, key)
	}
	return n, nil
}

func (d *reportDecoder) uint(key string) (uint64, error) {
	n, err := d.number(key)
	if err != nil {
		return 0, err
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: want a whole number from 0 to 2^64-1", ErrBadReport, key)
	}
	return u, nil
}

// count reads a whole number and clamps it to [0, max].
func (d *reportDecoder) count(key string, limit int64) (int64, error) {
	n, err := d.number(key)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && len(n) > 0 && n[0] == '-':
		return 0, nil
	case errors.Is(err, strconv.ErrRange):
		return limit, nil
	case err != nil:
		return 0, fmt.Errorf("%w: %s: want a whole number", ErrBadReport, key)
	}
	return min(max(v, 0), limit), nil
}

func (d *reportDecoder) bool(key string) (bool, error) {
	t, err := d.token()
	if err != nil {
		return false, err
	}
	b, ok := t.(bool)
	if !ok {
		return false, fmt.Errorf("%w: %s: want true or false", ErrBadReport, key)
	}
	return b, nil
}

// skip reads past one value of a field this relay does not know.
func (d *reportDecoder) skip(depth int) error {
	t, err := d.token()
	if err != nil {
		return err
	}
	delim, ok := t.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth >= maxUnknownDepth {
		return fmt.Errorf("%w: an unknown field nests deeper than %d levels", ErrBadReport, maxUnknownDepth)
	}
	for d.dec.More() {
		if delim == '{' {
			if _, err := d.token(); err != nil { // the key
				return err
			}
		}
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	_, err = d.token() // the closing delimiter
	return err
}

// errTokenTooLong: a string or number longer than the decoder allows.
var errTokenTooLong = fmt.Errorf("a JSON string or number longer than %d bytes", maxToken)

// tokenLimit passes JSON through and fails as soon as one string or bare
// value runs longer than max bytes, so that json.Decoder never buffers a
// huge token: its buffer stays near the longest token allowed.
type tokenLimit struct {
	r          io.Reader
	max        int
	run        int // bytes of the current string or bare value
	inStr, esc bool
}

func (t *tokenLimit) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for i, c := range p[:n] {
		switch {
		case t.inStr:
			t.run++
			switch {
			case t.esc:
				t.esc = false
			case c == '\\':
				t.esc = true
			case c == '"':
				t.inStr, t.run = false, 0
			}
		case c == '"':
			t.inStr, t.run = true, 0
		case c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			t.run = 0
		default:
			t.run++
		}
		if t.run > t.max {
			return i, errTokenTooLong
		}
	}
	return n, err
}
