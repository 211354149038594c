package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/units"
)

const cacheUsage = `usage: relayd cache ls|stats|rm|pin|prefetch [flags] [PATH…]
  ls [--prefix P] [--pinned] [--limit N]   cached objects, in path order
  stats                                    objects, bytes, hit ratio, WAN saving
  rm PATH…                                 remove cached objects
  pin [--unpin] PATH…                      exempt cached objects from eviction (or lift it)
  prefetch [--include GLOB]… [--wait] [PATH…]   warm the cache at background priority`

// cacheCmd is `relayd cache …` over /v1/cache.
func cacheCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, cacheUsage)
		if len(args) > 0 {
			return flag.ErrHelp
		}
		return usageError{errors.New("relayd cache: want ls, stats, rm, pin or prefetch")}
	}
	sub, args := args[0], args[1:]
	name := "relayd cache " + sub
	run, ok := cacheCommands[sub]
	if !ok {
		msg := fmt.Sprintf("unknown cache command %q", sub)
		if s := nearest(sub, []string{"ls", "stats", "rm", "pin", "prefetch"}); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", "relayd cache "+s)
		}
		return usageError{errors.New(msg + `; see "relayd cache --help"`)}
	}
	return run(ctx, name, args, stdout, stderr, env)
}

// cacheCommands are the subcommands of `relayd cache`.
var cacheCommands = map[string]func(ctx context.Context, name string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error{
	"ls":       cacheLs,
	"stats":    cacheStats,
	"rm":       cacheRm,
	"pin":      cachePin,
	"prefetch": cachePrefetch,
}

// cacheLs is `relayd cache ls`: it lists the cached objects.
func cacheLs(ctx context.Context, name string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var prefix string
	var pinned bool
	var limit int
	c, asJSON, err := parseAdminCmd(name, args, stderr, env, func(fs *flag.FlagSet) {
		fs.StringVar(&prefix, "prefix", "", "only paths that start with this")
		fs.BoolVar(&pinned, "pinned", false, "only pinned objects")
		fs.IntVar(&limit, "limit", 0, "at most this many objects (default all)")
	})
	if err != nil {
		return err
	}
	return cacheList(ctx, c, prefix, pinned, limit, *asJSON, stdout)
}

// cacheStats is `relayd cache stats`: it prints the cache summary.
func cacheStats(ctx context.Context, name string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, asJSON, err := parseAdminCmd(name, args, stderr, env, nil)
	if err != nil {
		return err
	}
	s, err := c.CacheStats(ctx)
	if err != nil || *asJSON {
		return show(stdout, *asJSON, s, err, nil)
	}
	quota := "no quota"
	if s.MaxBytes > 0 {
		quota = "of " + units.Bytes(s.MaxBytes).String()
	}
	fmt.Fprintf(stdout, "objects      %d (%s, %s)\nhits/misses  %d / %d (hit ratio %.1f %%)\nserved       %s\nfrom WAN     %s (WAN saving %.1f %%)\nfrom group   %s\nevictions    %d\n",
		s.Objects, units.Bytes(s.Bytes), quota, s.Hits, s.Misses, 100*s.HitRatio, units.Bytes(s.BytesServed),
		units.Bytes(s.UpstreamBytes), 100*s.WANSaving, units.Bytes(s.PeerBytes), s.Evictions)
	if u := s.Upstream; u != nil {
		fmt.Fprintf(stdout, "WAN wire     %s for %s of content (wire/content %.2f)%s\n", units.Bytes(u.WireBytes), units.Bytes(u.ContentBytes),
			u.WireRatio, kindTraffic(u.Kinds))
	}
	return nil
}

// kindTraffic is the WAN bytes per kind, " (security 1 MB/1 MB, …)", or
// "" when nothing came.
func kindTraffic(kinds []admin.KindTraffic) string {
	var parts []string
	for _, k := range kinds {
		if k.WireBytes > 0 || k.ContentBytes > 0 {
			parts = append(parts, fmt.Sprintf("%s %s/%s", k.Kind, units.Bytes(k.WireBytes), units.Bytes(k.ContentBytes)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; wire/content by kind: " + strings.Join(parts, ", ")
}

// cacheRm is `relayd cache rm`: it removes objects from the cache.
func cacheRm(ctx context.Context, name string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, _, paths, err := parseAdminArgs(name, args, stderr, env, nil)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usageError{errors.New("usage: relayd cache rm PATH…")}
	}
	var errs []error
	for _, p := range paths {
		if err := c.DeleteCached(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, explain(err)))
			continue
		}
		fmt.Fprintf(stdout, "removed %s\n", strings.TrimPrefix(p, "/"))
	}
	return errors.Join(errs...)
}

// cachePin is `relayd cache pin`: it pins (or unpins) cached objects.
func cachePin(ctx context.Context, name string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var unpin bool
	c, asJSON, paths, err := parseAdminArgs(name, args, stderr, env, func(fs *flag.FlagSet) {
		fs.BoolVar(&unpin, "unpin", false, "lift the pin instead")
	})
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usageError{errors.New("usage: relayd cache pin [--unpin] PATH…")}
	}
	res, err := c.Pin(ctx, paths, unpin)
	if err != nil {
		return explain(err)
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	for _, p := range res.Pinned {
		fmt.Fprintf(stdout, "pinned %s\n", p)
	}
	for _, p := range res.Unpinned {
		fmt.Fprintf(stdout, "unpinned %s\n", p)
	}
	if len(res.Missing) > 0 {
		return fmt.Errorf("not cached (prefetch them first): %s", strings.Join(res.Missing, ", "))
	}
	return nil
}

// cachePrefetch is `relayd cache prefetch`: it warms the cache at background priority.
func cachePrefetch(ctx context.Context, name string, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var include []string
	var wait bool
	c, asJSON, paths, err := parseAdminArgs(name, args, stderr, env, func(fs *flag.FlagSet) {
		fs.Var(listFlag{&include}, "include", "catalog paths matching this glob, e.g. 'security/**'; repeat or comma-separate")
		fs.BoolVar(&wait, "wait", false, "wait until the prefetch has finished")
	})
	if err != nil {
		return err
	}
	if len(paths) == 0 && len(include) == 0 {
		return usageError{errors.New("usage: relayd cache prefetch [--include GLOB]… [--wait] [PATH…]")}
	}
	st, err := c.Prefetch(ctx, paths, include)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(stderr, "prefetching %d objects at background priority\n", st.Queued)
	for wait && st.Running {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if st, err = c.PrefetchProgress(ctx); err != nil {
			return explain(err)
		}
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "queued %d, done %d, failed %d\n", st.Queued, st.Done, st.Failed)
	for _, e := range st.Errors {
		fmt.Fprintf(stdout, "  %s\n", e)
	}
	if wait && st.Failed > 0 {
		return fmt.Errorf("prefetch: %d of %d failed", st.Failed, st.Queued)
	}
	return nil
}

// cacheList prints every page of GET /v1/cache (or up to limit).
func cacheList(ctx context.Context, c *admin.Client, prefix string, pinned bool, limit int, asJSON bool, stdout io.Writer) error {
	var all []admin.CachedObject
	after := ""
	for {
		page, err := c.CacheList(ctx, prefix, after, 1000, pinned)
		if err != nil {
			return explain(err)
		}
		all = append(all, page.Objects...)
		if page.Next == "" || (limit > 0 && len(all) >= limit) {
			break
		}
		after = page.Next
	}
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	if asJSON {
		return printJSON(stdout, map[string]any{"objects": all})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSIZE\tSTORED\tPINNED\tDIGEST")
	for _, o := range all {
		pin := ""
		if o.Pinned {
			pin = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Path, units.Bytes(o.Size), o.Stored.UTC().Format(time.DateTime), pin, o.Digest)
	}
	return tw.Flush()
}
