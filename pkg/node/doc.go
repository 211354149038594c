// Package node is the one place a relayd node is wired together: it opens
// the store, builds the mode's parts (origin directory or proxy cache over
// an upstream), starts the content and admin servers and shuts them all
// down in order. cmd/relayd imports only this package (and the small
// vocabulary packages its flags parse into).
package node
