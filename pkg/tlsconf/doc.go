// Package tlsconf holds a node's TLS material: its certificate (served on
// the TLS content port and presented to parents as a client certificate),
// the CA pools it checks others against, and reloading both on SIGHUP
// without dropping a connection. It also makes a small CA and node
// certificates for a lab (`relayd certs`).
//
// It does not listen or dial: the node and the upstream client put its
// tls.Config callbacks into their servers and transports.
package tlsconf
