package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/relayd/relayd/pkg/node"
	"github.com/relayd/relayd/pkg/treeauth"
	"github.com/relayd/relayd/pkg/tufrepo"
	"github.com/relayd/relayd/pkg/units"
)

// keygenCmd: relayd keygen --role NAME|--gossip|--tree --out DIR.
func keygenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for the key: NAME.key (0600) and NAME.pub with --role, gossip.key with --gossip, tree.key with --tree")
	gossip := fs.Bool("gossip", false, "write a group gossip encryption key (gossip.key) instead")
	tree := fs.Bool("tree", false, "write the tree key (tree.key) every relay of the tree holds (--tree-key-file) instead")
	role := fs.String("role", "", "write a TUF signing key NAME.key (0600) and NAME.pub for a role (root, targets, snapshot, timestamp, a team)")
	if err := parseFlags(fs, args, stderr, keygenUsage); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 || (*gossip && *tree) || (*role != "" && (*gossip || *tree)) {
		return usageError{fmt.Errorf("usage: %s", keygenUsage)}
	}
	if *role == "" && !*gossip && !*tree {
		return usageError{fmt.Errorf("relayd keygen needs --role NAME (a TUF role key), --gossip or --tree: the catalog.key of relayd-catalog-v1 is gone (see Migrating to TUF in docs/operations.md)\nusage: %s", keygenUsage)}
	}
	if *role != "" {
		priv, pub, id, err := tufrepo.GenerateKey(*out, *role)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (keep it secret, off the published tree)\nwrote %s\nkey id %s\n", priv, pub, id)
		return nil
	}
	if *gossip {
		path, err := node.GenerateGossipKey(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (copy it to every relay of the group: --gossip-key-file)\n", path)
		return nil
	}
	path, err := treeauth.GenerateKey(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (copy it to every relay of the tree, the origin included: --tree-key-file; keep it off agents)\n", path)
	return nil
}

const keygenUsage = "relayd keygen --role NAME|--gossip|--tree --out DIR"

// publishCmd: relayd publish TREE --keys DIR (the TUF repository).
func publishCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd publish", flag.ContinueOnError)
	var keyFiles, keyDirs []string
	fs.Var(listFlag{&keyFiles}, "key", "private key to sign with (repeatable)")
	fs.Var(listFlag{&keyDirs}, "keys", "directory of private keys (every *.key) to sign with")
	workers := fs.Int("workers", 0, "files hashed in parallel (default: number of CPUs)")
	tsOnly := fs.Bool("timestamp-only", false, "only re-sign timestamp.json (version+1, the same snapshot)")
	staging := fs.String("staging", "", "where a generation short of signatures is staged (default TREE/../<tree>.tuf-staged)")
	exp := tufrepo.DefaultExpiries()
	fs.Var(durationFlag{&exp.Targets}, "targets-expiry", "lifetime of re-signed targets, team roles and bins")
	fs.Var(durationFlag{&exp.Snapshot}, "snapshot-expiry", "lifetime of a new snapshot")
	fs.Var(durationFlag{&exp.Timestamp}, "timestamp-expiry", "lifetime of a new timestamp")
	pos, err := parseTree(fs, args, stderr, publishUsage)
	if err != nil {
		return err
	}
	if len(pos) != 1 || len(keyFiles)+len(keyDirs) == 0 {
		return usageError{fmt.Errorf("usage: %s", publishUsage)}
	}
	ring, err := tufrepo.LoadKeyRing(keyFiles, keyDirs)
	if err != nil {
		return err
	}
	tree := pos[0]
	if *tsOnly {
		if err := tufrepo.ResignTimestamp(tree, ring, exp.Timestamp, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-signed %s/%s/%s\n", tree, tufrepo.Dir, tufrepo.TimestampFile)
		return nil
	}
	start := time.Now()
	res, err := tufrepo.Publish(ctx, tree, ring, tufrepo.Options{Workers: *workers, Staging: *staging, Expiry: exp})
	if err != nil {
		return err
	}
	verb := "published"
	switch {
	case res.StagedIn != "":
		verb = "staged"
	case !res.Changed:
		verb = "unchanged, kept"
	}
	// scripts/bench/scenarios/publish.sh reads "N objects, B bytes hashed".
	fmt.Fprintf(stdout, "%s generation %d: %d objects, %d bytes hashed in %s → %s/%s (%d metadata files written)\n",
		verb, res.Generation, res.Files, res.Bytes, took(res.Bytes, time.Since(start)), tree, tufrepo.Dir, len(res.Written))
	if res.StagedIn != "" {
		printResult(stdout, tree, &res.Result)
	}
	return nil
}

const publishUsage = "relayd publish TREE --keys DIR | --key KEY… [--workers N] [--staging DIR] [--timestamp-only]"

// took words how long publish hashed, with the rate only when it means
// something: a tree of a few files hashes in microseconds, and "0 MB/s"
// (or "9000 MB/s") then says nothing about the disk.
func took(bytes int64, d time.Duration) string {
	s := d.Round(time.Millisecond).String()
	if d < time.Millisecond {
		s = "under 1ms"
	}
	if bytes >= minRateBytes && d >= minRateTime {
		s += fmt.Sprintf(" (%s/s)", units.FormatBytes(int64(float64(bytes)/d.Seconds())))
	}
	return s
}

// Below these a hashing rate is noise.
const (
	minRateBytes = 64 << 20
	minRateTime  = 100 * time.Millisecond
)
