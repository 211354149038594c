package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/relayd/relayd/internal/proctest"
)

// requests records the admin API requests the page sends: path →
// Authorization header of each.
type requests struct {
	mu   sync.Mutex
	auth map[string][]string
}

// watchRequests records the tab's requests from now until the test ends.
func watchRequests(ctx context.Context) *requests {
	r := &requests{auth: map[string][]string{}}
	events := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			path := ev.Request.URL
			if i := strings.Index(path, "/v1/"); i >= 0 {
				path = path[i:]
			} else {
				continue
			}
			a, _ := ev.Request.Headers["Authorization"].(string)
			r.mu.Lock()
			r.auth[path] = append(r.auth[path], a)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *requests) of(path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth[path]...)
}

// visible reports whether the element with the id is shown (not hidden).
func visible(ctx context.Context, id string) (bool, error) {
	return eval[bool](ctx, "!document.getElementById("+fmt.Sprintf("%q", id)+").hidden")
}

// TestDashboardToken: when the admin port wants a token the page asks for
// it (a wrong one is refused and asked again), then sends it as
// "Authorization: Bearer" on the stream, keeps it in sessionStorage and
// sets no cookie.
func TestDashboardToken(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	const token = "the-dashboard-admin-token"
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tree, _, _ := publishedTree(t)
	_, adminURL := startOrigin(t, tree, "--admin-token-file", tokenFile)
	reqs := watchRequests(ctx)

	run(t, ctx, "open the dashboard", chromedp.Navigate(adminURL+"/ui/"))
	prompt := func(what string, wantMsg string) {
		t.Helper()
		proctest.Eventually(t, 15*time.Second, what, func() error {
			tok, err1 := visible(ctx, "token-section")
			main, err2 := visible(ctx, "main")
			msg, err3 := text(ctx, "token-msg")
			if err := errors.Join(err1, err2, err3); err != nil {
				return err
			}
			if !tok || main || !strings.Contains(msg, wantMsg) {
				return fmt.Errorf("token prompt shown %v, main shown %v, message %q (want %q)", tok, main, msg, wantMsg)
			}
			return nil
		})
	}
	prompt("the token prompt", "needs its token")
	if got := reqs.of("/v1/events"); len(got) == 0 || got[0] != "" {
		t.Errorf("the first stream request carried %q, want no Authorization (none known yet)", got)
	}

	run(t, ctx, "give a wrong token", chromedp.SendKeys(chromedp.ID("token-input"), "not-the-token"),
		chromedp.Click(chromedp.ID("token-submit")))
	prompt("the prompt again after a wrong token", "refused this token")

	run(t, ctx, "give the token", chromedp.SendKeys(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.ID("token-submit")))
	proctest.Eventually(t, 15*time.Second, "the dashboard live with the token", func() error {
		main, err1 := visible(ctx, "main")
		rows, err2 := eval[int](ctx, "document.querySelectorAll('#tree-table tbody tr').length")
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if !main || rows != 1 {
			return fmt.Errorf("main shown %v, %d tree rows; want the origin's row", main, rows)
		}
		return nil
	})
	got := reqs.of("/v1/events")
	if len(got) == 0 || got[len(got)-1] != "Bearer "+token {
		t.Errorf("stream requests carried %q, the last want %q", got, "Bearer "+token)
	}
	stored, err1 := eval[string](ctx, "sessionStorage.getItem('relayd.adminToken') || ''")
	local, err2 := eval[int](ctx, "localStorage.length")
	cookie, err3 := eval[string](ctx, "document.cookie")
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if stored != token || local != 0 || cookie != "" {
		t.Errorf("sessionStorage %q, localStorage %d items, cookies %q; want the token in sessionStorage only", stored, local, cookie)
	}
}
