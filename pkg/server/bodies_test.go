package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request whose body is dripped (chunked, a byte now and then, never
// ended) gets its answer — /-/healthz its 200, an unsigned /-/report its
// 401 — and the connection closes at once: the server does not wait to
// drain the body. (Before, /-/healthz never answered: the server read the
// body to discard it before writing the response, and a refused report
// was read on long after its 401.)
func TestDrippedBodyAnsweredAndClosed(t *testing.T) {
	t.Parallel()
	rs := newRelayServer(t)
	for _, tc := range []struct {
		req  string
		want int
	}{
		{"GET /-/healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n", http.StatusOK},
		{"POST /-/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n", http.StatusUnauthorized},
		{"POST /-/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", http.StatusUnauthorized},
	} {
		line := tc.req[:strings.Index(tc.req, "\r\n")]
		c, err := net.Dial("tcp", rs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, tc.req); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s with a dripped body: no answer: %v", line, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !resp.Close {
			t.Fatalf("%s: %d, Connection %q; want %d and close", line, resp.StatusCode, resp.Header.Get("Connection"), tc.want)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("%s: after the answer: %v, want the connection closed (EOF)", line, err)
		}
	}
}
