// Agents as the relay sees them: who holds an event stream open here, and
// whether they have the newest generation.
package node

import "github.com/relayd/relayd/pkg/events"

// AgentsDoc is /v1/agents.
type AgentsDoc struct {
	// Agents and Relays count the agents and child relays holding an
	// event stream open to this relay.
	Agents int `json:"agents"`
	Relays int `json:"relays"`
	// Generation is the newest generation this relay serves; AtNewest
	// and Behind split the agents by the generation they reported when
	// they (re)connected (an agent reconnects after each sync). Agents
	// that reported none count as behind.
	Generation uint64 `json:"generation"`
	AtNewest   int    `json:"at_newest"`
	Behind     int    `json:"behind"`
	// Connected lists every stream, oldest first.
	Connected []events.Client `json:"connected"`
}

// agents is /v1/agents.
func (n *Node) agents() any {
	doc := AgentsDoc{Generation: n.generation(), Connected: n.events.Clients()}
	for _, c := range doc.Connected {
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
