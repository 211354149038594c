// Agents as the relay sees them: who holds an event stream open here.
package node

// agents is /v1/agents.
func (n *Node) agents() any {
	clients := n.events.Clients()
	a, r := n.events.Count()
	return map[string]any{"agents": a, "relays": r, "connected": clients}
}
