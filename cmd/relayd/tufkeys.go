package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/wire"
)

const tufDelegateSynopsis = "relayd tuf delegate TREE --role NAME --paths 'dir/**' --key PUB… [--threshold K] [--remove] [--keys DIR] [--sign-key KEY…]"

func tufDelegateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd tuf delegate", flag.ContinueOnError)
	var rf repoFlags
	rf.register(fs, "sign-key")
	var paths, pubs []string
	role := fs.String("role", "", "team role name (e.g. security)")
	fs.Var(listFlag{&paths}, "paths", "paths the role alone signs, comma-separated or repeated ('security/**')")
	fs.Var(listFlag{&pubs}, "key", "public key of the role (repeatable)")
	threshold := fs.Int("threshold", 1, "signatures the role needs")
	remove := fs.Bool("remove", false, "remove the role (its targets go to the next role that takes them)")
	pos, err := parseTree(fs, args, stderr, tufDelegateSynopsis)
	if err != nil {
		return err
	}
	tree, err := oneTree(pos, tufDelegateSynopsis)
	if err != nil {
		return err
	}
	d := tufrepo.Delegation{Role: *role, Threshold: *threshold, Remove: *remove}
	d.Paths = paths
	if d.Keys, err = loadPubs(pubs); err != nil {
		return err
	}
	ring, err := rf.ring()
	if err != nil {
		return err
	}
	res, err := tufrepo.Delegate(ctx, tree, ring, d, rf.opt)
	if err != nil {
		return err
	}
	printResult(stdout, tree, res)
	return nil
}

func loadPubs(files []string) ([]*metadata.Key, error) {
	var out []*metadata.Key
	for _, f := range files {
		k, err := tufrepo.LoadPublicKey(f)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

const tufRotateSynopsis = "relayd tuf rotate TREE --role root|targets|snapshot|timestamp|rollout [--add-key PUB…] [--remove-key PUB|KEYID…] | --rollout-key PUB… [--threshold K] [--keys DIR] [--sign-key KEY…]"

func tufRotateCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd tuf rotate", flag.ContinueOnError)
	var rf repoFlags
	rf.register(fs, "sign-key")
	var add, remove []string
	role := fs.String("role", "", "root, targets, snapshot, timestamp or rollout")
	fs.Var(listFlag{&add}, "add-key", "public key to add to the role (repeatable)")
	var rollout []string
	fs.Var(listFlag{&rollout}, "rollout-key", "public key to add to the rollout role, created if the root has none (repeatable; --role rollout --add-key PUB)")
	fs.Var(listFlag{&remove}, "remove-key", "public key file or key ID to remove from the role (repeatable)")
	threshold := fs.Int("threshold", 0, "new threshold (default: unchanged)")
	pos, err := parseTree(fs, args, stderr, tufRotateSynopsis)
	if err != nil {
		return err
	}
	tree, err := oneTree(pos, tufRotateSynopsis)
	if err != nil {
		return err
	}
	if len(rollout) > 0 {
		if *role != "" && *role != wire.RolloutRole {
			return usageError{fmt.Errorf("relayd tuf rotate: --rollout-key changes the %s role, not %s", wire.RolloutRole, *role)}
		}
		*role, add = wire.RolloutRole, append(add, rollout...)
	}
	r := tufrepo.Rotation{Role: *role, Threshold: *threshold}
	if r.Add, err = loadPubs(add); err != nil {
		return err
	}
	for _, x := range remove {
		if _, err := os.Stat(x); err == nil {
			k, err := tufrepo.LoadPublicKey(x)
			if err != nil {
				return err
			}
			x, _ = k.ID()
		}
		r.Remove = append(r.Remove, x)
	}
	ring, err := rf.ring()
	if err != nil {
		return err
	}
	res, err := tufrepo.Rotate(tree, ring, r, rf.opt)
	if err != nil {
		return err
	}
	printResult(stdout, tree, res)
	return nil
}

const tufSignSynopsis = "relayd tuf sign --key KEY… FILE|STAGINGDIR"

func tufSignCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd tuf sign", flag.ContinueOnError)
	var keys []string
	fs.Var(listFlag{&keys}, "key", "private key to sign with (repeatable)")
	pos, err := parseTree(fs, args, stderr, tufSignSynopsis)
	if err != nil {
		return err
	}
	if len(pos) != 1 || len(keys) == 0 {
		return usageError{fmt.Errorf("usage: %s", tufSignSynopsis)}
	}
	ring, err := tufrepo.LoadKeyRing(keys, nil)
	if err != nil {
		return err
	}
	if st, err := os.Stat(pos[0]); err == nil && st.IsDir() {
		n, err := tufrepo.SignStaged(pos[0], ring)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "signed %d staged files in %s\n", n, pos[0])
		return nil
	}
	ids, err := tufrepo.SignFile(pos[0], ring)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		fmt.Fprintf(stdout, "%s: already signed by these keys, or its role lists none of them\n", pos[0])
		return nil
	}
	fmt.Fprintf(stdout, "signed %s with %s\n", pos[0], strings.Join(ids, ", "))
	return nil
}

const tufCombineSynopsis = "relayd tuf combine --out FILE A B …"

func tufCombineCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd tuf combine", flag.ContinueOnError)
	out := fs.String("out", "", "file to write the merged signatures to")
	pos, err := parseTree(fs, args, stderr, tufCombineSynopsis)
	if err != nil {
		return err
	}
	if *out == "" || len(pos) == 0 {
		return usageError{fmt.Errorf("usage: %s", tufCombineSynopsis)}
	}
	if err := tufrepo.Combine(*out, pos); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

const tufCommitSynopsis = "relayd tuf commit TREE [--staging DIR] [--keys DIR] [--key KEY…]"

func tufCommitCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd tuf commit", flag.ContinueOnError)
	var rf repoFlags
	rf.register(fs, "key")
	pos, err := parseTree(fs, args, stderr, tufCommitSynopsis)
	if err != nil {
		return err
	}
	tree, err := oneTree(pos, tufCommitSynopsis)
	if err != nil {
		return err
	}
	ring, err := rf.ring()
	if err != nil {
		return err
	}
	res, err := tufrepo.Commit(tree, ring, rf.opt)
	if err != nil {
		if res != nil {
			printNeeds(stderr, res.Needs)
		}
		return err
	}
	printResult(stdout, tree, res)
	return nil
}

const tufStatusSynopsis = "relayd tuf status TREE [--staging DIR]"

func tufStatusCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd tuf status", flag.ContinueOnError)
	staging := fs.String("staging", "", "staging directory (default TREE/../<tree>.tuf-staged)")
	pos, err := parseTree(fs, args, stderr, tufStatusSynopsis)
	if err != nil {
		return err
	}
	tree, err := oneTree(pos, tufStatusSynopsis)
	if err != nil {
		return err
	}
	st, err := tufrepo.Stat(tree, *staging)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "root version %d, generation %d, timestamp version %d\n", st.RootVersion, st.Generation, st.TimestampVersion)
	for _, r := range st.Roles {
		fmt.Fprintf(stdout, "%-12s version %-4d expires %s  threshold %d of %d keys %s", r.Name, r.Version,
			r.Expires.Format("2006-01-02T15:04:05Z"), r.Threshold, len(r.KeyIDs), shortIDs(r.KeyIDs))
		if r.Paths > 0 || r.Targets > 0 || r.Bins > 0 {
			fmt.Fprintf(stdout, "  %d targets", r.Targets)
			if r.Bins > 0 {
				fmt.Fprintf(stdout, " in %d bins", r.Bins)
			}
		}
		fmt.Fprintln(stdout)
	}
	printGates(stdout, st)
	if st.StagedIn == "" {
		fmt.Fprintln(stdout, "nothing staged")
		return nil
	}
	fmt.Fprintf(stdout, "staged (%s) in %s\n", st.StagedKind, st.StagedIn)
	printNeeds(stdout, st.Needs)
	return nil
}

// printGates shows the signed gates of a tree whose root has a rollout
// role.
func printGates(w io.Writer, st *tufrepo.Status) {
	switch {
	case st.GatesErr != nil:
		fmt.Fprintf(w, "gates: %v\n", st.GatesErr)
	case st.Gates != nil:
		g := st.Gates
		fmt.Fprintf(w, "gates: plan %q, newest generation %d", g.Plan, g.Newest.Version)
		if g.Halted {
			fmt.Fprintf(w, ", HALTED: %s", g.Reason)
		}
		fmt.Fprintln(w)
		for i, r := range g.Rings {
			fmt.Fprintf(w, "  ring %d %-12s open at generation %-4d groups %s\n", i, r.Name, r.Open.Version, strings.Join(shortList(r.Groups, 8), " "))
		}
	default:
		for _, r := range st.Roles {
			if r.Name == wire.RolloutRole {
				fmt.Fprintln(w, "gates: none signed yet (the origin signs them: relayd serve --mode origin --rollout-key FILE)")
			}
		}
	}
}

func shortIDs(ids []string) string {
	var s []string
	for _, id := range ids {
		s = append(s, id[:min(len(id), 12)])
	}
	return "[" + strings.Join(s, " ") + "]"
}
