package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"
)

// membersCmd: relayd members — the group as the node sees it.
func membersCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, asJSON, err := parseAdminCmd("relayd members", args, stderr, env, nil)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/v1/members", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var doc struct {
		Group   string `json:"group"`
		Self    string `json:"self"`
		Members []struct {
			Name  string `json:"name"`
			Addr  string `json:"gossip_addr"`
			State string `json:"state"`
			Meta  struct {
				Mode       string `json:"m"`
				URL        string `json:"u"`
				Generation uint64 `json:"n"`
				Ready      bool   `json:"r"`
			} `json:"meta"`
			LastChange time.Time `json:"last_change"`
			Self       bool      `json:"self"`
		} `json:"members"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("members: %w", err)
	}
	fmt.Fprintf(stdout, "group %s, seen from %s\n", doc.Group, doc.Self)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tREADY\tMODE\tGENERATION\tURL\tGOSSIP\tSINCE")
	for _, m := range doc.Members {
		name := m.Name
		if m.Self {
			name += " (self)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%s\t%s\t%s\n", name, m.State, m.Meta.Ready, m.Meta.Mode,
			m.Meta.Generation, m.Meta.URL, m.Addr, m.LastChange.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// statusCmd: relayd status — the node's status document.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	c, asJSON, err := parseAdminCmd("relayd status", args, stderr, env, nil)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &doc); err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.Marshal(doc)
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}
