package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/relayd/relayd/pkg/admin"
)

func TestAdminCommands(t *testing.T) {
	t.Parallel()
	members := admin.Members{Group: "hq", Self: "r1", Members: []admin.Member{
		{Name: "r1", Addr: "127.0.0.1:7946", State: "alive", Self: true,
			Meta: admin.MemberMeta{Mode: "proxy", URL: "http://127.0.0.1:20080", Generation: 4, Ready: true}},
	}}
	srv := httptest.NewServer(admin.New(admin.Config{
		Status: func() admin.Status {
			return admin.Status{Node: "r1", Group: "hq", Mode: "proxy", Generation: 7, Upstream: []string{"http://hq:20080"},
				Parents: []string{"http://hq-1:20080", "http://hq-2:20080"}, Transfers: &admin.TransferStats{Resumes: 2},
				Loops: &admin.LoopStatus{Refused: 1, LastRefused: "hops: loop"}}
		},
		Registry: prometheus.NewRegistry(),
		Members:  func() (admin.Members, error) { return members, nil },
	}, zerolog.Nop()))
	defer srv.Close()
	env := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"members", "--admin", srv.URL}, []string{"group hq", "r1 (self)", "alive", "proxy", "http://127.0.0.1:20080"}},
		{[]string{"members", "--admin", srv.URL, "--json"}, []string{`"group":"hq"`}},
		{[]string{"status", "--admin", srv.URL}, []string{"r1 (group hq, proxy mode", "generation  7", "http://hq-1:20080, http://hq-2:20080",
			"2 resumes", "LOOPS       1 refused here (hops: loop)"}},
		{[]string{"status", "--admin", srv.URL, "--json"}, []string{`"node":"r1"`}},
	} {
		var out, errb bytes.Buffer
		if err := realMain(context.Background(), tc.args, &out, &errb, env); err != nil {
			t.Fatalf("%v: %v (%s)", tc.args, err, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
	// Errors name the problem: a node without a mirror, a node not running.
	var out, errb bytes.Buffer
	err := realMain(context.Background(), []string{"sync", "--admin", srv.URL}, &out, &errb, env)
	if err == nil || !strings.Contains(err.Error(), "does not mirror") {
		t.Fatalf("sync against a node without mirror: %v", err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if err := realMain(context.Background(), []string{"status", "--admin", dead.URL}, &out, &errb, env); err == nil || !strings.Contains(err.Error(), "is relayd running") {
		t.Fatalf("status against nothing: %v", err)
	}
	if err := realMain(context.Background(), []string{"members", "extra"}, &out, &errb, env); exitCode(err) != 2 {
		t.Fatalf("extra argument: %v (exit %d)", err, exitCode(err))
	}
}
