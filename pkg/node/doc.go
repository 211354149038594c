// Package node is the one place a relayd node is wired together: it opens
// the store, builds the mode's parts (origin directory or proxy cache over
// an upstream), starts the content and admin servers and shuts them all
// down in order. cmd/relayd imports only this package, the admin client
// (pkg/admin) and the agent, and the small vocabulary packages its flags
// parse into (test/deps checks it).
//
// Files: node.go opens the parts and runs them; status.go is what the
// admin API shows (/v1/status, readiness, sync) and metrics.go the
// Prometheus collector; cache.go, group.go, tree.go and agents.go turn the
// parts' values into the admin documents of pkg/admin.
package node
