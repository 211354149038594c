// Package group is a relay group's membership: the relays of one site find
// each other by gossip (hashicorp/memberlist on the LAN), tell each other
// their mode, content URL, catalog generation and readiness in node
// metadata, and agree — without coordination — on which member owns an
// object (rendezvous hashing over the healthy members), so that only the
// owner fetches it from upstream.
//
// Nodes of another group (a different memberlist label and group in the
// metadata) or without the group's gossip key are refused. memberlist's
// own log lines are adapted to zerolog here and nowhere else.
//
// It does not fetch or serve objects: proxycache asks it who the owner is.
package group
