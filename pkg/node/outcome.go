// The agents' outcomes (issue 15): the table POST /-/outcome fills, its
// summary in this relay's reports, and the compliance of the subtree
// (/v1/compliance, relayd_compliance_agents).
package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/compliance"
	"github.com/relayd/relayd/pkg/hierarchy"
	"github.com/relayd/relayd/pkg/outcome"
	"github.com/relayd/relayd/pkg/server"
	"github.com/relayd/relayd/pkg/wire"
)

// openOutcomes makes the outcome table (outcome-agents 0: none); one
// address reports for as many agents as it may hold event streams.
func (n *Node) openOutcomes() {
	if n.cfg.OutcomeAgents <= 0 {
		return
	}
	n.outcomes = outcome.New(outcome.Config{MaxAgents: n.cfg.OutcomeAgents, PerAddr: n.budget.PerAddr}, n.clk)
	n.reg.MustRegister((*complianceMetrics)(n))
}

// outcomeFunc is POST /-/outcome; nil (404) without a table.
func (n *Node) outcomeFunc() server.OutcomeFunc {
	if n.outcomes == nil {
		return nil
	}
	return n.outcomes.Put
}

// outcomeSummary is Report.Outcomes: this relay's own agents, those
// holding a stream counted even before they report; nil without a table.
func (n *Node) outcomeSummary() *wire.Outcomes {
	if n.outcomes == nil {
		return nil
	}
	var streaming []string
	for _, c := range n.events.Clients() {
		if !c.Relay && c.ID != "" {
			streaming = append(streaming, c.ID)
		}
	}
	s := n.outcomes.Summary(streaming)
	return &s
}

// gatesNow returns the rollout gates in force here: the origin's engine's,
// or those a relay holds; nil for none.
func (n *Node) gatesNow() *wire.Gates {
	if n.rollout != nil {
		g := n.rollout.eng.Gates()
		return &g
	}
	if n.gatesHeld == nil {
		return nil
	}
	if g, _, ok := n.gatesHeld(); ok {
		return g
	}
	return nil
}

// compliance computes the subtree's compliance: this relay's agents and
// every report its children sent; a relay the tree shows gone (no
// report for three intervals) counts its agents as not reporting.
func (n *Node) compliance() compliance.Report {
	return compliance.ComputeStale([]wire.Report{n.selfReport(true)}, n.gatesNow(), n.clk.Now(),
		hierarchy.AgesFor(n.cfg.ReportInterval).Gone)
}

// complianceFunc serves /v1/compliance; nil (404) without a table.
func (n *Node) complianceFunc() admin.ComplianceFunc {
	if n.outcomes == nil {
		return nil
	}
	return n.compliance
}

// complianceMetrics exports the subtree's agents per ring and state,
// computed at each scrape: relayd_compliance_agents{ring,state}. Without
// gates the ring label is empty and the counts are the whole subtree's.
type complianceMetrics Node

var complianceAgentsDesc = prometheus.NewDesc("relayd_compliance_agents",
	"Agents of this relay's subtree by ring and state (on_target, behind, failed, not_reporting); ring is empty without rollout gates.",
	[]string{"ring", "state"}, nil)

// Describe implements prometheus.Collector.
func (m *complianceMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- complianceAgentsDesc }

// Collect implements prometheus.Collector.
func (m *complianceMetrics) Collect(ch chan<- prometheus.Metric) {
	r := (*Node)(m).compliance()
	emit := func(ring string, c *compliance.Counts) {
		for _, st := range compliance.States {
			ch <- prometheus.MustNewConstMetric(complianceAgentsDesc, prometheus.GaugeValue, float64(c.Of(st)), ring, st)
		}
	}
	if len(r.Rings) == 0 {
		emit("", &r.Total)
		return
	}
	for i := range r.Rings {
		emit(r.Rings[i].Name, &r.Rings[i].ComplianceCounts)
	}
}
