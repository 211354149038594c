package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/relayd/relayd/pkg/catalog"
	"github.com/relayd/relayd/pkg/node"
	"github.com/relayd/relayd/pkg/treeauth"
)

// keygenCmd: relayd keygen [--gossip|--tree] --out DIR.
func keygenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for catalog.key (0600) and catalog.pub (or gossip.key with --gossip, tree.key with --tree)")
	gossip := fs.Bool("gossip", false, "write a group gossip encryption key (gossip.key) instead")
	tree := fs.Bool("tree", false, "write the tree key (tree.key) every relay of the tree holds (--tree-key-file) instead")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *out == "" || fs.NArg() > 0 || (*gossip && *tree) {
		return usageError{fmt.Errorf("usage: relayd keygen [--gossip|--tree] --out DIR")}
	}
	if *gossip {
		path, err := node.GenerateGossipKey(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (copy it to every relay of the group: --gossip-key-file)\n", path)
		return nil
	}
	if *tree {
		path, err := treeauth.GenerateKey(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (copy it to every relay of the tree, the origin included: --tree-key-file; keep it off agents)\n", path)
		return nil
	}
	priv, pub, err := catalog.GenerateKeys(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret, off the published tree)\nwrote %s (give it to relays and agents: --pubkey)\n", priv, pub)
	return nil
}

// publishCmd: relayd publish --dir TREE --key KEY.
func publishCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayd publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "content tree to publish")
	keyPath := fs.String("key", "", "private key (catalog.key from relayd keygen)")
	workers := fs.Int("workers", 0, "files hashed in parallel (default: number of CPUs)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *dir == "" || *keyPath == "" || fs.NArg() > 0 {
		return usageError{fmt.Errorf("usage: relayd publish --dir TREE --key KEY")}
	}
	key, err := catalog.LoadPrivateKey(*keyPath)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := catalog.Publish(ctx, *dir, key, catalog.PublishOptions{KeyFile: *keyPath, Workers: *workers})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	verb := "published"
	if !res.Changed {
		verb = "unchanged, kept"
	}
	fmt.Fprintf(stdout, "%s generation %d: %d objects, %d bytes hashed in %.2fs (%.0f MB/s) → %s/%s\n",
		verb, res.Catalog.Generation, res.Files, res.Bytes, secs, float64(res.Bytes)/1e6/max(secs, 1e-9), *dir, catalog.File)
	return nil
}
