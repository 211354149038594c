package hostile

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestAdminBearerSchemeCaseInsensitive (issue 11 row 10): the admin port
// with --admin-token-file refused "Authorization: bearer <token>" (the
// scheme is case-insensitive in HTTP) with 401 at 8d8f9f8.
func TestAdminBearerSchemeCaseInsensitive(t *testing.T) {
	t.Parallel()
	const token = "hostile-admin-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := publishTree(t, map[string][]byte{"a": randomBytes(6, 100)})
	relay := startRelayd(t, "--mode", "origin", "--root", tr.Dir, "--admin", "127.0.0.1:0", "--admin-token-file", tokenFile)
	admin := "http://" + relay.WaitLogAddr(t, "admin listening")
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong-token", http.StatusUnauthorized},
		{"Bearer " + token, http.StatusOK},
		{"bearer " + token, http.StatusOK},
		{"BEARER " + token, http.StatusOK},
	} {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		if a := do(http.MethodGet, admin+"/v1/status", 1<<20, hdr...); a.Status != tc.want {
			t.Errorf("GET /v1/status with Authorization %q: %d %s, want %d", tc.auth, a.Status, a.Body, tc.want)
		}
	}
}
