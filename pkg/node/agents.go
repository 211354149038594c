// Agents as the relay sees them: who holds an event stream open here, and
// whether they have the newest generation.
package node

import "github.com/relayd/relayd/pkg/admin"

// agents is /v1/agents.
func (n *Node) agents() admin.Agents {
	clients := n.events.Clients()
	doc := admin.Agents{Generation: n.generation(), Connected: make([]admin.Stream, 0, len(clients))}
	for _, c := range clients {
		doc.Connected = append(doc.Connected, c)
		if c.Relay {
			doc.Relays++
			continue
		}
		doc.Agents++
		if doc.Generation > 0 && c.Generation >= doc.Generation {
			doc.AtNewest++
		} else {
			doc.Behind++
		}
	}
	return doc
}
