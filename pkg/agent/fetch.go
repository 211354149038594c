// Downloading one object: failover, Range resume on the next relay, size
// and sha256 checked while the bytes stream, written to a temporary file
// that is renamed only once verified.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/relayd/relayd/internal/atomicfile"
	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/cleanpath"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/httprange"
	"github.com/relayd/relayd/pkg/wire"
)

// partMarker is in the name of every temporary file: a file with it is
// never complete.
const partMarker = ".relayd-part-"

// sink is where a download's bytes go.
type sink interface {
	io.Writer
	// Reset throws away what was written.
	Reset() error
}

type discardSink struct{}

func (discardSink) Write(p []byte) (int, error) { return len(p), nil }
func (discardSink) Reset() error                { return nil }

// download is the state of one object's transfer across relays.
type download struct {
	obj catalog.Object
	key string // what relays are asked for: obj.Path, or its consistent name
	gen uint64
	h   hash.Hash
	off int64 // bytes received and written so far
	out sink
	// identity: an encoded answer failed to decode; ask for identity only.
	identity bool
	// dict is the version of the path the agent holds, offered for a dcz
	// answer; loadDict reads it (see dictionaryFor).
	dict     digest.Digest
	loadDict func() ([]byte, error)
}

// fetchObject downloads obj (listed in generation gen) into out, trying
// the relays in turn.
func (a *Agent) fetchObject(ctx context.Context, gen uint64, obj catalog.Object, out sink) error {
	d := &download{obj: obj, key: obj.Path, gen: gen, h: digest.NewHash(), out: out}
	if cur := a.tuf.Current(); cur != nil && gen < cur.Catalog.Generation {
		// An older generation than the newest verified (a ring held
		// back): its version of the path by the name that names it for
		// good. (Not the newest ever seen: metadata a rotated-out key
		// fast-forwarded is dropped, and so is what it claimed.)
		d.key = catalog.ConsistentName(obj)
	}
	d.dict, d.loadDict = a.dictionaryFor(out, obj)
	return a.retry(ctx, "fetch "+obj.Path, func(base *url.URL) error { return a.tryObject(ctx, base, d) })
}

// restart throws away what d received.
func (a *Agent) restart(d *download) error {
	if d.off > 0 && a.cfg.OnBytes != nil {
		a.cfg.OnBytes(-d.off)
	}
	d.off = 0
	d.h.Reset()
	if err := d.out.Reset(); err != nil {
		return fatal(fmt.Errorf("reset %s: %w", d.obj.Path, err))
	}
	return nil
}

// tryObject asks one relay for the rest of d. A resume is pinned to the
// catalog's digest (the strong ETag relays send for listed objects) and
// size: only a 206 of that representation continues d; a 200 starts it
// over, and any other answer moves on to the next relay, d kept.
func (a *Agent) tryObject(ctx context.Context, base *url.URL, d *download) error {
	size := d.obj.Size
	pin := httprange.Pin{ETag: d.obj.Digest.ETag(), Size: size}
	hdr := http.Header{}
	hdr.Set(wire.GenerationHeader, strconv.FormatUint(d.gen, 10))
	resuming := d.off > 0 && d.off < size
	if resuming {
		pin.Header(hdr, d.off, size-1)
	} else if d.off > 0 {
		if err := a.restart(d); err != nil {
			return err
		}
	}
	askCoding(d, hdr)
	resp, err := a.get(ctx, cleanpath.ObjectURL(base, d.key), hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := a.acceptAnswer(base, d, pin, resuming, resp); err != nil {
		return err
	}
	cr, err := a.decodedBody(d, resp)
	if err != nil {
		return err
	}
	if cr != nil {
		err = a.receiveCoded(d, cr)
	} else {
		err = a.receive(d, resp.Body)
	}
	if err != nil {
		return err
	}
	if got := digest.FromHash(d.h); got != d.obj.Digest {
		a.stats.restarts.Add(1)
		if answerCoding(resp) != "" {
			a.refuseCoding(d)
		}
		if err := a.restart(d); err != nil {
			return err
		}
		return fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, d.obj.Digest)
	}
	return nil
}

// acceptAnswer decides what a relay's answer does to d: a 200 (of the
// catalog's size, when announced) starts it over if d had bytes, a 206 of
// the pinned representation continues it; anything else is an error, d kept.
func (a *Agent) acceptAnswer(base *url.URL, d *download, pin httprange.Pin, resuming bool, resp *http.Response) error {
	size := d.obj.Size
	var refused error
	if resuming {
		refused = pin.Check(resp, d.off, size-1)
		if refused != nil && resp.StatusCode < 300 {
			a.stats.resumesRefused.Add(1)
			a.lim.Event(&a.log, zerolog.WarnLevel, "resume refused").Err(refused).Str("relay", base.Redacted()).
				Str("path", d.obj.Path).Int64("offset", d.off).Msg("resume refused: not the object the catalog lists")
		}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if d.off > 0 {
			// If-Range did not match or the relay ignores Range: it
			// sends the whole object, from the start.
			if err := a.restart(d); err != nil {
				return err
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != size && answerCoding(resp) == "" {
			return fmt.Errorf("%w: the relay announces %d bytes, the catalog says %d", ErrSize, resp.ContentLength, size)
		}
	case resp.StatusCode == http.StatusPartialContent && resuming && refused == nil:
		a.stats.resumes.Add(1)
		a.log.Info().Str("relay", base.Redacted()).Str("path", d.obj.Path).Int64("offset", d.off).Msg("download resumed")
	case resp.StatusCode == http.StatusPartialContent:
		// Another representation (or a range not asked for): its bytes
		// are not appended; the next relay goes on from d.off.
		if refused == nil {
			refused = errors.New("a 206 to a request without Range")
		}
		return fmt.Errorf("%w: 206 to a request for bytes %d-%d: %w", ErrStatus, d.off, size-1, refused)
	default:
		return statusError(resp.StatusCode, d.obj.Path)
	}
	return nil
}

// receive appends an accepted body to d until the catalog's size. It
// reads at most one byte more than the catalog allows: an endless body is
// cut there.
func (a *Agent) receive(d *download, r io.Reader) error {
	size := d.obj.Size
	buf := make([]byte, 256<<10)
	body := io.LimitReader(r, size-d.off+1)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if d.off+int64(n) > size {
				a.stats.restarts.Add(1)
				if err := a.restart(d); err != nil {
					return err
				}
				return fmt.Errorf("%w: the relay sent more than the catalog's %d bytes", ErrSize, size)
			}
			if _, err := d.out.Write(buf[:n]); err != nil {
				return fatal(fmt.Errorf("write %s: %w", d.obj.Path, err))
			}
			d.h.Write(buf[:n])
			d.off += int64(n)
			a.stats.bytes.Add(int64(n))
			if a.cfg.OnBytes != nil {
				a.cfg.OnBytes(int64(n))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil && d.off == size {
			break // every byte is in; a reset instead of the end is harmless
		}
		if rerr != nil {
			// Keep what arrived: the next relay goes on from d.off.
			return fmt.Errorf("body broke after %d of %d bytes: %w", d.off, size, rerr)
		}
	}
	if d.off < size {
		return fmt.Errorf("%w: the body ended after %d of %d bytes", ErrSize, d.off, size)
	}
	return nil
}

// fileSink is a temporary file next to the object's final path, inside
// the output directory (an os.Root: nothing is written outside it).
type fileSink struct {
	root       *os.Root
	f          *os.File
	tmp, final string
}

// checkPath refuses what the agent must never write, and returns the
// path of this system for p: a path that is not the same file name on
// every system (cleanpath.LocalPath: a colon, "nul.txt", "a.", …), and the
// agent's own state directory and temporary files, whatever their case
// (macOS and Windows ignore it).
func checkPath(p string) (string, error) {
	local, err := cleanpath.LocalPath(p)
	if err != nil {
		return "", fmt.Errorf("agent: %q is not a file name every system reads alike: %w", p, err)
	}
	first, _, _ := strings.Cut(p, "/")
	if strings.EqualFold(first, StateDir) || strings.Contains(strings.ToLower(p), partMarker) {
		return "", fmt.Errorf("agent: %s: path reserved for the agent's own files", p)
	}
	return local, nil
}

// newFileSink opens a temporary file for the catalog path p. Paths are
// kept with slashes (fs.Glob wants them) and turned into this system's
// with filepath.FromSlash for os.Root.
func newFileSink(root *os.Root, p string) (*fileSink, error) {
	final, err := checkPath(p)
	if err != nil {
		return nil, fatal(err)
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if dir != "" {
		if err := root.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
			return nil, fatal(err)
		}
	} else {
		dir = "."
	}
	removeParts(root, dir, base)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.FromSlash(path.Join(dir, "."+base+partMarker+hex.EncodeToString(rnd[:])))
	f, err := root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fatal(err)
	}
	return &fileSink{root: root, f: f, tmp: tmp, final: final}, nil
}

// removeParts deletes temporary files an earlier, killed run left for
// base in dir (slash-separated).
func removeParts(root *os.Root, dir, base string) {
	if strings.ContainsAny(base, `*?[\`) {
		return
	}
	old, _ := fs.Glob(root.FS(), path.Join(dir, "."+base+partMarker+"*"))
	for _, p := range old {
		_ = root.Remove(filepath.FromSlash(p))
	}
}

func (s *fileSink) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s *fileSink) Reset() error {
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

// commit makes the verified file visible under its final name: fsync,
// rename over the old file (atomic on Windows too), fsync the directory
// (not on Windows, which cannot: see internal/atomicfile). A rename that
// another program blocks (Windows) fails with atomicfile.ErrInUse.
func (s *fileSink) commit() (fs.FileInfo, error) {
	if err := s.f.Sync(); err != nil {
		s.abort()
		return nil, err
	}
	if err := s.f.Close(); err != nil {
		_ = s.root.Remove(s.tmp)
		return nil, err
	}
	if err := atomicfile.RenameIn(s.root, s.tmp, s.final); err != nil {
		_ = s.root.Remove(s.tmp)
		return nil, err
	}
	if err := atomicfile.SyncDirIn(s.root, filepath.Dir(s.final)); err != nil {
		return nil, err
	}
	return s.root.Stat(s.final)
}

func (s *fileSink) abort() {
	_ = s.f.Close()
	_ = s.root.Remove(s.tmp)
}
