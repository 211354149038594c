package proxycache

// The negative cache: a 404 (or 410) from the upstream is remembered for
// Config.NegativeTTL, so repeated requests for a missing object do not all
// cross the WAN.

import "time"

func (c *Cache) isNegative(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.negative[key]
	if ok && now.After(until) {
		delete(c.negative, key)
		return false
	}
	return ok
}

// maxNegative bounds the negative cache; a flood of distinct 404s must not
// grow memory without limit.
const maxNegative = 10000

func (c *Cache) setNegative(key string) {
	if c.cfg.NegativeTTL < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.negative) >= maxNegative {
		for k := range c.negative { // drop an arbitrary one
			delete(c.negative, k)
			break
		}
	}
	c.negative[key] = c.clock.Now().Add(c.cfg.NegativeTTL)
}
