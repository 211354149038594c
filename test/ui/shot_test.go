package ui

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshot writes a PNG of the whole page to file.
func screenshot(t *testing.T, ctx context.Context, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the dashboard in %s", file)
}

// httpGet GETs url and closes the body.
func httpGet(url string) (*http.Response, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}
