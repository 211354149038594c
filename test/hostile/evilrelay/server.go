package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// behaviour is one parsed rule's action.
type behaviour struct {
	name string        // "ok", "404", "endless", "drip", "wrong", "cut", "other", …
	n    int64         // cut: the offset
	tick time.Duration // drip: the interval
}

func (b behaviour) String() string {
	switch b.name {
	case "cut":
		return fmt.Sprintf("cut:%d", b.n)
	case "drip":
		return fmt.Sprintf("drip:%d", b.tick.Milliseconds())
	}
	return b.name
}

func parseBehaviour(s string) (behaviour, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	switch name {
	case "ok", "404", "endless", "wrong", "other", "other-length", "other-same-etag":
		if hasArg {
			return behaviour{}, fmt.Errorf("behaviour %q takes no argument", name)
		}
		return behaviour{name: name}, nil
	case "cut", "drip":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 || (name == "drip" && n == 0) {
			return behaviour{}, fmt.Errorf("behaviour %q: bad number %q", s, arg)
		}
		return behaviour{name: name, n: n, tick: time.Duration(n) * time.Millisecond}, nil
	}
	return behaviour{}, fmt.Errorf("unknown behaviour %q", s)
}

// object is one file of the tree, read into memory once (test trees are
// small), with the validators a static server would send.
type object struct {
	data    []byte
	etag    string
	modTime time.Time
}

// server serves the tree and applies the rules.
type server struct {
	dir        string
	endlessFor time.Duration
	asRelay    bool
	log        zerolog.Logger
	url        string // set before serving

	mu      sync.Mutex
	rules   map[string]behaviour
	raw     []string
	objects map[string]*object
}

func newServer(dir string, endlessFor time.Duration, asRelay bool, log zerolog.Logger) (*server, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--dir %s: not a directory (%v)", dir, err)
	}
	return &server{dir: dir, endlessFor: endlessFor, asRelay: asRelay, log: log, objects: map[string]*object{}}, nil
}

// setRules replaces the rules with lines of PATH=BEHAVIOUR.
func (s *server) setRules(lines []string) error {
	rules := map[string]behaviour{}
	var raw []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		p, b, ok := strings.Cut(l, "=")
		if !ok || (p != "*" && !strings.HasPrefix(p, "/")) {
			return fmt.Errorf("rule %q: want PATH=BEHAVIOUR (PATH /… or *)", l)
		}
		bh, err := parseBehaviour(b)
		if err != nil {
			return fmt.Errorf("rule %q: %w", l, err)
		}
		rules[p] = bh
		raw = append(raw, l)
	}
	s.mu.Lock()
	s.rules, s.raw = rules, raw
	s.mu.Unlock()
	return nil
}

// rule is the behaviour for path.
func (s *server) rule(p string) behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.rules[p]; ok {
		return b
	}
	if b, ok := s.rules["*"]; ok && !strings.HasPrefix(p, "/-/") {
		return b
	}
	return behaviour{name: "ok"}
}

// load reads the file for URL path p (nil if there is none). A file the
// test rewrote since it was read (another size or modification time) is
// read again, so a test can switch the served set while evilrelay runs.
func (s *server) load(p string) *object {
	clean := path.Clean("/" + p)
	name := filepath.Join(s.dir, filepath.FromSlash(clean))
	st, err := os.Stat(name)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	s.mu.Lock()
	o := s.objects[clean]
	s.mu.Unlock()
	if o != nil && o.modTime.Equal(st.ModTime()) && int64(len(o.data)) == st.Size() {
		return o
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(data)
	o = &object{data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, modTime: st.ModTime()}
	s.mu.Lock()
	s.objects[clean] = o
	s.mu.Unlock()
	return o
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch p {
	case "/-/healthz":
		_, _ = io.WriteString(w, "ok\n")
		return
	case "/-/evil":
		s.control(w, r)
		return
	case "/-/relays":
		if s.asRelay {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"group":"evil","relays":[{"name":"evil","url":%q}]}`, s.url)
			return
		}
	}
	b := s.rule(p)
	s.log.Info().Str("method", r.Method).Str("path", r.URL.EscapedPath()).Str("range", r.Header.Get("Range")).
		Str("if_range", r.Header.Get("If-Range")).Stringer("behaviour", b).Msg("request")
	o := s.load(p)
	if o == nil || b.name == "404" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	s.serve(w, r, o, b)
}

// control shows (GET) or replaces (PUT, one rule per line) the rules.
func (s *server) control(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		s.mu.Lock()
		raw := strings.Join(s.raw, "\n")
		s.mu.Unlock()
		_, _ = io.WriteString(w, raw+"\n")
	case http.MethodPut:
		var lines []string
		sc := bufio.NewScanner(io.LimitReader(r.Body, 64<<10))
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := s.setRules(lines); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
	}
}
