// Requests a parent refused as loops (508): counted, the last one kept
// for the status.
package hierarchy

import (
	"fmt"
	"net/url"

	"github.com/relayd/relayd/pkg/hops"
)

// Loops returns how many upstream requests were refused as loops, and the
// last refusal.
func (c *Client) Loops() (int64, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loops.Load(), c.lastLoop
}

func (c *Client) setLastLoop(err error) {
	c.mu.Lock()
	c.lastLoop = err.Error()
	c.mu.Unlock()
}

// refusedAsLoop records a parent's 508 and returns the error for it.
func (c *Client) refusedAsLoop(base *url.URL, what string) error {
	err := fmt.Errorf("%w: %s refused %s as a loop: check the upstream configuration of the groups on the path", hops.ErrLoop, base.Host, what)
	c.loops.Add(1)
	c.setLastLoop(err)
	return err
}
