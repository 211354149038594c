// Command evilrelay is the malicious upstream of the hostile tests: a
// static server for a tree published by `relayd publish` (objects and the
// TUF metadata at /-/tuf/) that misbehaves on the paths it is told
// to, the way a broken or hostile parent relay or origin would.
//
//	evilrelay --dir TREE [--listen 127.0.0.1:0] [--as-relay] [--evil PATH=BEHAVIOUR]…
//
// PATH is an object path ("/a/b.bin"), a metadata path
// ("/-/tuf/timestamp.json"), or "*" for every object (not the metadata); an exact path wins over "*". BEHAVIOUR is one
// of:
//
//	ok                    serve faithfully (Range, If-Range, ETag, Last-Modified)
//	404                   answer 404
//	endless               200 without a length and a body that never ends (for
//	                      /-/tuf/: the start of a timestamp, then endless hashes)
//	drip:MS               the right bytes, one byte every MS milliseconds
//	wrong                 tampered bytes with the right length and headers (Range works)
//	cut:N                 the right headers, then the connection is cut once the
//	                      response reaches byte offset N of the object
//	other                 another version of the object: other bytes, same length,
//	                      another ETag, same Last-Modified; If-Range is ignored
//	other-length          as other, but 4096 bytes longer (another total length)
//	other-same-etag       as other, but claiming the original's ETag
//
// Files are read again when they change on disk (size or modification
// time), so a test can rewrite the served tree, metadata included, while
// evilrelay runs.
//
// The rules can be replaced while it runs: PUT /-/evil with one rule per
// line (GET /-/evil shows them). It logs JSON lines to stderr: "content
// listening" with its address (for proctest's WaitReady/WaitLogAddr) and
// one "request" line per request with the behaviour applied.
// An endless or dripping body stops when the client goes away or after
// --endless-for, so nothing it starts runs unbounded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// rulesFlag collects repeated --evil flags.
type rulesFlag []string

func (r *rulesFlag) String() string     { return strings.Join(*r, ",") }
func (r *rulesFlag) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "evilrelay:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("evilrelay", flag.ContinueOnError)
	dir := fs.String("dir", "", "published tree to serve (required)")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	asRelay := fs.Bool("as-relay", false, "answer /-/relays with itself, so relays take it for a relay")
	endlessFor := fs.Duration("endless-for", 2*time.Minute, "longest time an endless or dripping body runs")
	var rules rulesFlag
	fs.Var(&rules, "evil", "PATH=BEHAVIOUR (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %s: loopback addresses only", *listen)
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Str("component", "evilrelay").Logger()
	s, err := newServer(*dir, *endlessFor, *asRelay, log)
	if err != nil {
		return err
	}
	if err := s.setRules(rules); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	s.url = "http://" + ln.Addr().String()
	log.Info().Str("addr", ln.Addr().String()).Msg("content listening")
	// No write timeout: endless and dripping bodies are the point; they
	// stop by themselves after --endless-for.
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
