// The admin commands' common wiring: --admin, --admin-token-file and
// --json, the admin.Client they make, and how answers and errors print.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/relayd/relayd/pkg/admin"
)

// adminFlags adds --admin, --admin-token-file and --json to fs.
func adminFlags(fs *flag.FlagSet, env func(string) (string, bool)) (*string, *string, *bool) {
	def := "http://127.0.0.1:20090"
	if v, ok := env("RELAYD_ADMIN_URL"); ok {
		def = v
	}
	tokDef, _ := env("RELAYD_ADMIN_TOKEN_FILE")
	return fs.String("admin", def, "admin API URL (env RELAYD_ADMIN_URL)"),
		fs.String("admin-token-file", tokDef, "file with the admin bearer token (env RELAYD_ADMIN_TOKEN_FILE)"),
		fs.Bool("json", false, "print JSON for scripts")
}

// parseAdminCmd parses an admin client command's flags (the common ones
// and those extra registers) and connects the client.
func parseAdminCmd(name string, args []string, stderr io.Writer, env func(string) (string, bool), extra func(*flag.FlagSet)) (*admin.Client, *bool, error) {
	c, asJSON, rest, err := parseAdminArgs(name, args, stderr, env, extra)
	if err == nil && len(rest) > 0 {
		return nil, nil, usageError{fmt.Errorf("%s takes no arguments, got %q", name, rest)}
	}
	return c, asJSON, err
}

// parseAdminArgs is parseAdminCmd for commands that take arguments: it
// returns them.
func parseAdminArgs(name string, args []string, stderr io.Writer, env func(string) (string, bool), extra func(*flag.FlagSet)) (*admin.Client, *bool, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base, tok, asJSON := adminFlags(fs, env)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args, stderr, name+" [flags]"); err != nil {
		return nil, nil, nil, err
	}
	c, err := newAdminClient(*base, *tok)
	return c, asJSON, fs.Args(), err
}

// newAdminClient is the admin API client of --admin and
// --admin-token-file.
func newAdminClient(base, tokenFile string) (*admin.Client, error) {
	token := ""
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return admin.NewClient(base, token, &http.Client{Timeout: 30 * time.Second}), nil
}

// explain adds to an error that is not the node's answer the likely
// cause: no node listening at --admin.
func explain(err error) error {
	var api *admin.APIError
	if err == nil || errors.As(err, &api) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w (is relayd running? --admin)", err)
}

// show prints doc, the answer of an admin call that returned err: as JSON
// for scripts with asJSON, otherwise with print.
func show[T any](stdout io.Writer, asJSON bool, doc T, err error, print func(T) error) error {
	if err != nil {
		return explain(err)
	}
	if asJSON {
		return printJSON(stdout, doc)
	}
	return print(doc)
}
