package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRenderPairsRelaydWithNginx(t *testing.T) {
	in := `# date: today
DESC hit warm cache
RESULT hit target=nginx-sendfile 64m_gbps=2.000 origin_gets=0 bg_cpu=1/2
RESULT hit target=relayd-sendfile 64m_gbps=3.000 origin_gets=0 bg_cpu=0/0
RESULT herd target=nginx ttlb_max_ms=4000 ideal_fill_ms=1342
RESULT herd target=relayd ttlb_max_ms=2000 ideal_fill_ms=1342
DESC publish hash a tree
CMD publish relayd publish TREE --keys K
CMD publish relayd publish TREE --keys K
RESULT publish target=relayd-publish secs=2.5 mbps=429.50
`
	meta, tables, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	render(&out, meta, tables)
	s := out.String()
	for _, want := range []string{
		"- date: today",
		"| metric | nginx-sendfile | relayd-sendfile | relayd-sendfile / nginx-sendfile |",
		"| 64m_gbps ↑ | 2.000 | 3.000 | 1.50 |",
		"| origin_gets ↓ | 0 | 0 | – |",
		"| bg_cpu | 1/2 | 0/0 |  |",
		"| ttlb_max_ms ↓ | 4000 | 2000 | 0.50 |",
		"| ideal_fill_ms | 1342 | 1342 |  |",
		"hash a tree\n\nMeasured commands:\n\n```sh\nrelayd publish TREE --keys K\n```\n\n| metric | relayd-publish |",
		"| secs ↓ | 2.5 |",
		"| mbps ↑ | 429.50 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}
