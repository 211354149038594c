// relayd tuf …: the TUF repository's roles and keys (pkg/tufrepo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

const tufUsage = `Usage: relayd tuf COMMAND …
  relayd tuf init TREE --keys DIR | --root-key PUB… [--root-threshold K] --targets-key PUB… [--targets-threshold K] --snapshot-key PUB --timestamp-key PUB [--rollout-key PUB… [--rollout-threshold K]] [--key KEY…]
  relayd tuf delegate TREE --role NAME --paths 'dir/**' --key PUB… [--threshold K] [--remove] [--keys DIR] [--sign-key KEY…]
  relayd tuf rotate TREE --role root|targets|snapshot|timestamp|rollout [--add-key PUB…] [--remove-key PUB|KEYID…] [--threshold K] [--keys DIR] [--sign-key KEY…]
  relayd tuf rotate TREE --rollout-key PUB… [--threshold K] [--keys DIR]   (adds the rollout role's keys)
  relayd tuf sign --key KEY… FILE|STAGINGDIR
  relayd tuf combine --out FILE A B …
  relayd tuf commit TREE [--staging DIR] [--keys DIR] [--key KEY…]
  relayd tuf status TREE [--staging DIR]
`

// durationFlag is a duration that also takes days ("365d").
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || n <= 0 {
			return fmt.Errorf("%q: want a duration (24h, 90d)", s)
		}
		*f.d = time.Duration(n) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want a duration (24h, 90d)", s)
	}
	*f.d = d
	return nil
}

// repoFlags are the flags every writing command shares.
type repoFlags struct {
	keyDirs, keyFiles []string
	staging           string
	opt               tufrepo.Options
}

func (r *repoFlags) register(fs *flag.FlagSet, signKeyFlag string) {
	r.opt.Expiry = tufrepo.DefaultExpiries()
	fs.Var(listFlag{&r.keyDirs}, "keys", "directory of private keys (every *.key) to sign with (repeatable)")
	fs.Var(listFlag{&r.keyFiles}, signKeyFlag, "private key file to sign with (repeatable)")
	fs.StringVar(&r.staging, "staging", "", "where a change short of signatures is staged (default TREE/../<tree>.tuf-staged)")
	fs.Var(durationFlag{&r.opt.Expiry.Root}, "root-expiry", "lifetime of a new root")
	fs.Var(durationFlag{&r.opt.Expiry.Targets}, "targets-expiry", "lifetime of targets, team roles and bins")
	fs.Var(durationFlag{&r.opt.Expiry.Snapshot}, "snapshot-expiry", "lifetime of a snapshot")
	fs.Var(durationFlag{&r.opt.Expiry.Timestamp}, "timestamp-expiry", "lifetime of a timestamp")
}

func (r *repoFlags) ring() (*tufrepo.KeyRing, error) {
	r.opt.Staging = r.staging
	return tufrepo.LoadKeyRing(r.keyFiles, r.keyDirs)
}

// parseTree parses flags and positional arguments in any order (as
// parseFlags does the flags).
func parseTree(fs *flag.FlagSet, args []string, stderr io.Writer, synopsis string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	pos, err := parseInterleaved(fs, args)
	return pos, flagError(fs, err, stderr, synopsis)
}
func tufCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tufUsage)
		return usageError{errors.New("relayd tuf: no command")}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "init":
		return tufInitCmd(args, stdout, stderr)
	case "delegate":
		return tufDelegateCmd(ctx, args, stdout, stderr)
	case "rotate":
		return tufRotateCmd(args, stdout, stderr)
	case "sign":
		return tufSignCmd(args, stdout, stderr)
	case "combine":
		return tufCombineCmd(args, stdout, stderr)
	case "commit":
		return tufCommitCmd(args, stdout, stderr)
	case "status":
		return tufStatusCmd(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, tufUsage)
		return nil
	}
	return usageError{fmt.Errorf("relayd tuf: unknown command %q; see \"relayd tuf help\"", cmd)}
}

func oneTree(pos []string, synopsis string) (string, error) {
	if len(pos) != 1 {
		return "", usageError{fmt.Errorf("usage: %s", synopsis)}
	}
	return pos[0], nil
}

const tufInitSynopsis = "relayd tuf init TREE --keys DIR | --root-key PUB… --targets-key PUB… --snapshot-key PUB --timestamp-key PUB [--root-threshold K] [--targets-threshold K] [--rollout-key PUB… [--rollout-threshold K]] [--key KEY…]"

func tufInitCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd tuf init", flag.ContinueOnError)
	var rf repoFlags
	rf.register(fs, "key")
	roleKeys := map[string]*[]string{}
	thresholds := map[string]*int{}
	for _, r := range tufrepo.TopRoles {
		roleKeys[r] = &[]string{}
		fs.Var(listFlag{roleKeys[r]}, r+"-key", "public key (PUB, or a .key) of the "+r+" role (repeatable; default DIR/"+r+".pub of --keys)")
		if r == metadata.ROOT || r == metadata.TARGETS {
			thresholds[r] = fs.Int(r+"-threshold", 1, "signatures the "+r+" role needs")
		}
	}
	var rollout []string
	fs.Var(listFlag{&rollout}, "rollout-key", "public key of the rollout role, which signs the gates of staged rollouts (repeatable; without it no rollout role: no gating)")
	rolloutThreshold := fs.Int("rollout-threshold", 1, "signatures the rollout role needs")
	pos, err := parseTree(fs, args, stderr, tufInitSynopsis)
	if err != nil {
		return err
	}
	tree, err := oneTree(pos, tufInitSynopsis)
	if err != nil {
		return err
	}
	keys := map[string]tufrepo.RoleKeys{}
	if len(rollout) > 0 {
		rk := tufrepo.RoleKeys{Threshold: *rolloutThreshold}
		if rk.Keys, err = loadPubs(rollout); err != nil {
			return err
		}
		keys[wire.RolloutRole] = rk
	}
	for _, r := range tufrepo.TopRoles {
		files := *roleKeys[r]
		if len(files) == 0 && len(rf.keyDirs) > 0 {
			files = []string{filepath.Join(rf.keyDirs[0], r+".pub")}
		}
		if len(files) == 0 {
			return usageError{fmt.Errorf("relayd tuf init: no key for the %s role: --%s-key PUB or --keys DIR", r, r)}
		}
		rk := tufrepo.RoleKeys{Threshold: 1}
		if t := thresholds[r]; t != nil {
			rk.Threshold = *t
		}
		for _, f := range files {
			k, err := tufrepo.LoadPublicKey(f)
			if err != nil {
				return err
			}
			rk.Keys = append(rk.Keys, k)
		}
		keys[r] = rk
	}
	ring, err := rf.ring()
	if err != nil {
		return err
	}
	res, err := tufrepo.Init(tree, ring, keys, rf.opt)
	if err != nil {
		return err
	}
	printResult(stdout, tree, res)
	return nil
}

// printResult says what was installed, or staged and what it lacks.
func printResult(w io.Writer, tree string, res *tufrepo.Result) {
	if res.StagedIn != "" {
		fmt.Fprintf(w, "staged in %s (not installed: signatures lack)\n", res.StagedIn)
		printNeeds(w, res.Needs)
		fmt.Fprintf(w, "sign with: relayd tuf sign --key KEY %s   then: relayd tuf commit %s\n", res.StagedIn, tree)
		return
	}
	if len(res.Written) == 0 {
		fmt.Fprintln(w, "unchanged: nothing written")
		return
	}
	fmt.Fprintf(w, "wrote %s/%s: %s", tree, tufrepo.Dir, strings.Join(shortList(res.Written, 8), " "))
	if res.Pruned > 0 {
		fmt.Fprintf(w, " (pruned %d old files)", res.Pruned)
	}
	fmt.Fprintln(w)
}

func printNeeds(w io.Writer, needs []tufrepo.Need) {
	for i, n := range needs {
		if i == 8 {
			fmt.Fprintf(w, "  … and %d more files\n", len(needs)-i)
			break
		}
		fmt.Fprintf(w, "  %s (role %s): %d of %d signatures; may sign: %s\n", n.File, n.Role, n.Have, n.Threshold, strings.Join(n.Missing, ", "))
	}
}

func shortList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("… (%d files)", len(s)))
}
