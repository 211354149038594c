// Keys the node's parts read, written by `relayd keygen`.
package node

import "github.com/relayd/relayd/pkg/group"

// GenerateGossipKey writes a new group gossip key to dir/gossip.key (mode
// 0600), refusing to overwrite one, and returns its path: the file every
// relay of a group names in --gossip-key-file.
func GenerateGossipKey(dir string) (string, error) { return group.GenerateKey(dir) }
