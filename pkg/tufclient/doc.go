// Package tufclient is the verifying side of relayd's TUF repository: every
// relay and every agent is a TUF client (spec 1.0, client workflow 5.3–5.6)
// that walks the root chain, then timestamp, snapshot, targets and every
// delegated role, and turns the verified targets into a *catalog.Catalog.
//
// The checks themselves (signatures and thresholds, versions, rollback,
// expiry, lengths and hashes) are go-tuf's trustedmetadata package; this
// package fetches, persists and enumerates. It does not use go-tuf's
// updater.Updater, which looks targets up one at a time and fetches by
// URL: a relay needs every target of every role, through a Fetcher that
// fails over across parents. The order of operations is the updater's.
//
// What it adds to the spec's workflow:
//
//   - A no-change sync is one request: timestamp.json, fetched first.
//     When its bytes are the trusted one's, or it is the trusted
//     generation's timestamp re-signed (same snapshot; the origin re-signs
//     every day) and the trusted root verifies it, nothing else is fetched
//     and the kept metadata's expiry is checked again. Anything else (a new
//     generation, a timestamp the trusted keys do not verify, an expired
//     root) walks the root chain first, as the spec does. So a root
//     rotation reaches a client with the next generation, the next change
//     of timestamp keys, or when the trusted root expires; until then the
//     client trusts nothing new that the old root would not.
//   - A role whose version, delegator and root did not change is not fetched
//     again: a changed object among 100,000 in 1,024 hashed bins moves the
//     timestamp, the snapshot, and one bin.
//   - Enumeration (enumerate.go) gives each target path the entry of the
//     role the spec's pre-order depth-first search finds first, with its
//     limits: at most 32 roles visited per search (go-tuf's MaxDelegations),
//     delegated roles loaded to a depth of 32 and at most MaxRoles (65,536,
//     bins included) in all; a role delegated by two roles is verified
//     against the first in pre-order, as go-tuf's updater does. Every
//     reachable role is loaded, and one that fails fails the generation.
//     Each path is hashed once, whatever the levels it crosses; a property
//     test checks the result against go-tuf's updater.
//   - Persistence (store.go): the verified raw files in Options.Dir under
//     their served names, the last three generations kept, every root kept.
//     New loads what was trusted without the network; expired local
//     metadata still is the rollback floor.
//   - Staged rollouts (gates.go, pinned.go; issue 15): when the trusted
//     root lists the extra top-level role "rollout", VerifyGates checks the
//     gates file (rollout.json) with it, with a replay floor kept in Dir;
//     Pinned verifies a generation older than the newest from the pin a
//     gate gives (the pin stands for timestamp.json in go-tuf's
//     trustedmetadata, everything else is checked as for the newest). The
//     store keeps the metadata of every generation a held gate opens.
//
// Limits on what is fetched: timestamp.json at most 16 KiB, a root at
// most 512 KiB (go-tuf's defaults), snapshot, targets and delegated roles
// at the length the delegating metadata gives, else at Options.MaxBytes
// (64 MiB by default; it bounds every metadata file, never targets).
//
// This package knows nothing of HTTP or of relays: the Fetcher does.
package tufclient
