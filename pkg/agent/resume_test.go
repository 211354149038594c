package agent

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/relayd/relayd/internal/resumetest"
	"github.com/relayd/relayd/pkg/digest"
	"github.com/relayd/relayd/pkg/httprange"
)

// A download cut by one relay is continued only by a 206 of the object
// the catalog lists (its digest ETag and size): a relay answering the
// resume with another version's bytes is refused before a byte of them is
// written, and the next relay gives the rest. Nothing spliced reaches the
// digest check, so nothing has to be thrown away.
func TestResumeOnlyTheListedObject(t *testing.T) {
	t.Parallel()
	const p = "software/x/1/big.bin"
	big := data(1<<20, 1)
	other := data(1<<20, 2)
	etag := digest.FromBytes(big).ETag()
	for name, answer := range resumetest.Mismatched(etag, other) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := newRepo(t)
			files := map[string][]byte{p: big}
			cat := k.publish(t, 1, files)
			// The first object request anywhere is cut after 300 KiB; the
			// first resume anywhere gets another version's bytes; then the
			// relays behave.
			var cut, lied atomic.Bool
			r1, r2 := newRelay(t, cat, files), newRelay(t, cat, files)
			for _, r := range []*relay{r1, r2} {
				r.hook = func(w http.ResponseWriter, req *http.Request) bool {
					if req.URL.Path != "/"+p {
						return false
					}
					if !cut.Swap(true) {
						w.Header().Set("Content-Length", fmt.Sprint(len(big)))
						w.Header().Set("ETag", etag)
						w.Write(big[:300<<10])
						panic(http.ErrAbortHandler)
					}
					rs, err := httprange.Parse(req.Header.Get("Range"), int64(len(big)))
					if err != nil || len(rs) != 1 || lied.Swap(true) {
						return false
					}
					answer(w, rs[0].Start)
					return true
				}
			}
			dir := t.TempDir()
			a := newAgent(t, testConfig(k, dir, r1, r2))
			if _, err := a.Fetch(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			wantFile(t, dir, p, big)
			st := a.Stats()
			if st.ResumesRefused != 1 || st.Restarts != 0 || st.Resumes != 1 {
				t.Fatalf("stats %+v; want 1 refused resume, 1 resume and no restart (no spliced bytes written)", st)
			}
			noParts(t, dir)
		})
	}
}
