// Outcome reports (issue 15): what became of a generation on this agent,
// posted to its relays (POST /-/outcome), and the --exec install step
// that decides it.
package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/wire"
)

// reportRounds bounds the rounds over the relays a Report makes: an
// outcome is worth a few tries, not the retry budget of an object.
const reportRounds = 2

// Report tells the agent's relays what became of generation on it: state
// wire.OutcomeDownloaded, OutcomeInstalled or OutcomeFailed, with a
// reason for a failure (cut to wire.MaxOutcomeReason bytes, runes that do
// not print replaced). It tries each relay in turn, at most reportRounds
// rounds, and stops at the first that keeps it (202). An embedding
// program calls it after its own install step; `relayd agent --exec`
// does through Install.
func (a *Agent) Report(ctx context.Context, generation uint64, state, reason string) error {
	o := wire.Outcome{Agent: a.cfg.ID, Group: a.cfg.Group, Generation: generation, State: state,
		Reason: wire.Printable(reason, wire.MaxOutcomeReason)}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	body, err := json.Marshal(o)
	if err != nil {
		return err
	}
	rounds := 0
	return a.retryUntil(ctx, "report "+state, func(base *url.URL) error {
		return a.postOutcome(ctx, base, body)
	}, func() bool { rounds++; return rounds >= reportRounds })
}

// postOutcome posts one outcome to the relay at base. A refusal of the
// outcome itself (400, 413, 415) no relay would take: fatal. 404 (a relay
// that takes none), 429 and the rest: the next relay.
func (a *Agent) postOutcome(ctx context.Context, base *url.URL, body []byte) error {
	u := base.JoinPath(wire.OutcomePath).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", a.cfg.UserAgent)
	a.stats.requests.Add(1)
	resp, err := a.guard(false).Do(a.http, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNoContent:
		return nil
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return fatal(statusError(resp.StatusCode, u))
	}
	return statusError(resp.StatusCode, u)
}

// DefaultExecTimeout is the default Exec.Timeout.
const DefaultExecTimeout = 10 * time.Minute

// Exec is the install step run after a verified sync: a command of the
// system's shell (sh -c; cmd /C on Windows) with RELAYD_GENERATION (the
// generation synced) and RELAYD_DIR (the agent's directory) in its
// environment.
type Exec struct {
	// Command is the shell command; "" runs nothing (the sync is the
	// install).
	Command string
	// Timeout bounds the command; past it the command is killed and the
	// install failed. Default DefaultExecTimeout.
	Timeout time.Duration
	// Output takes the command's standard output and error; nil discards
	// them. Its standard error's first line is kept for the reason.
	Output io.Writer
}

// Install runs x after a sync of res.Generation and reports the outcome:
// without a command, installed; with one, downloaded before it runs, then
// installed (exit status 0) or failed ("exit N: first line of its
// standard error"). It returns the state reported, its reason and the
// error of the report (the install's own failure is its outcome, not an
// error). A sync that brought nothing new (the generation last installed,
// no file downloaded) installs nothing and reports nothing: it returns
// ("", "", nil). A failed install runs again at the next sync.
func (a *Agent) Install(ctx context.Context, res Result, x Exec) (state, reason string, err error) {
	if res.Generation == 0 {
		return "", "", fmt.Errorf("%w: no generation synced", ErrConfig)
	}
	if res.Generation == a.state.installed() && res.Downloaded == 0 {
		return "", "", nil
	}
	defer func() {
		if state == wire.OutcomeInstalled {
			a.state.setInstalled(res.Generation)
			if serr := a.state.save(); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	state = wire.OutcomeInstalled
	if x.Command != "" {
		if err := a.Report(ctx, res.Generation, wire.OutcomeDownloaded, ""); err != nil {
			a.log.Warn().Err(err).Uint64("generation", res.Generation).Msg("outcome not reported")
		}
		if reason = a.run(ctx, res.Generation, x); reason != "" {
			state = wire.OutcomeFailed
		}
	}
	return state, reason, a.Report(ctx, res.Generation, state, reason)
}

// run runs the command; "" if it succeeded, else why it failed.
func (a *Agent) run(ctx context.Context, generation uint64, x Exec) string {
	if x.Timeout <= 0 {
		x.Timeout = DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, x.Timeout)
	defer cancel()
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd", "/C", x.Command)
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", x.Command)
	}
	cmd.Env = append(os.Environ(), "RELAYD_GENERATION="+strconv.FormatUint(generation, 10), "RELAYD_DIR="+a.cfg.Dir)
	out := x.Output
	if out == nil {
		out = io.Discard
	}
	stderr := &firstBytes{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, io.MultiWriter(out, stderr)
	// A child the command left behind may hold the pipes open: Wait
	// gives up on them this long after the command ended or was killed.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return ""
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("timeout after %s", x.Timeout)
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		reason := fmt.Sprintf("exit %d", exitErr.ExitCode())
		if line := stderr.firstLine(); line != "" {
			reason += ": " + line
		}
		return wire.Printable(reason, wire.MaxOutcomeReason)
	}
	return wire.Printable("exec: "+err.Error(), wire.MaxOutcomeReason)
}

// firstBytes keeps the first max bytes written to it.
type firstBytes struct {
	buf bytes.Buffer
	max int
}

func (f *firstBytes) Write(p []byte) (int, error) {
	if room := f.max - f.buf.Len(); room > 0 {
		f.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// firstLine is the first non-blank line kept, trimmed.
func (f *firstBytes) firstLine() string {
	sc := bufio.NewScanner(bytes.NewReader(f.buf.Bytes()))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line
		}
	}
	return ""
}
