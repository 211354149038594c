// Package rollout is the origin's side of staged rollouts (issue 15): the
// rollout plan (rings of groups, soak times, gate conditions; plan.go)
// and the Engine that decides, from the agents' outcome counts, which
// generation each ring may install (state.go, engine.go).
//
// A new generation opens ring 0 at once; ring i+1 opens when ring i has
// met its gate (enough agents reporting, enough installed, few enough
// failed) for its soak without a break; failures above a ring's
// max_failures halt the rollout, and a halted rollout opens nothing until
// an operator resumes it. Every transition returns the decisions taken
// and the new wire.Gates, which the node signs with the tree's rollout
// role (pkg/tufrepo) and pushes down the tree.
//
// The engine is a state machine of its inputs: it reads no clock (the
// time is an argument), fetches nothing (the outcomes come through the
// Inputs interface), signs nothing and logs nothing; its state is saved in
// a bbolt file under the origin's data directory, so a restart neither
// reopens a ring nor forgets one. It does not verify gates (relays and
// agents do, pkg/tufclient) nor count outcomes (pkg/compliance does).
package rollout
