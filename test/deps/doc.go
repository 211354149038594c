// Package deps holds one test: the import graph keeps the layers of
// docs/STYLE.md where issue 12 set them. cmd/relayd imports the node, the
// admin client, the agent and vocabulary packages, never the behaviour
// layer; the admin API and its client depend on no behaviour package; the
// admin documents (pkg/admindoc) on the standard library and pkg/wire; the
// generic HTTP helpers on no relayd package.
package deps
