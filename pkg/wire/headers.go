package wire

import "strings"

// HeaderPrefix begins every header of relayd's own protocol: a transparent
// cache never stores such a field from an upstream nor forwards one.
const HeaderPrefix = "X-Relay-"

// OwnHeader reports whether the field name k is one of relayd's own.
func OwnHeader(k string) bool {
	return len(k) > len(HeaderPrefix) && strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix)
}

// Headers of the relay protocol, in canonical form.
const (
	// PeerHeader marks a request from another relay of the group (the
	// peer-request marker): it is served from cache or upstream, never
	// forwarded to a third member.
	PeerHeader = "X-Relay-Peer"

	// PathHeader carries the groups a request has crossed, nearest last
	// ("branch-a,hq"): the loop guard (pkg/hops) refuses a request that
	// already crossed the receiver's group.
	PathHeader = "X-Relay-Path"

	// NodeHeader names the child relay (its node name within its group,
	// the last group of PathHeader) on its event stream.
	NodeHeader = "X-Relay-Node"

	// AgentHeader carries an agent's id on its event stream (the query
	// parameter AgentParam does too).
	AgentHeader = "X-Relay-Agent"

	// GenerationHeader, on a request to a relay, names the catalog
	// generation the requester works from. A relay that follows a
	// catalog and has not made that generation live yet answers 503
	// instead of an object of an older generation, so the requester moves
	// on to a relay that has: a child only moves to a generation its
	// parent group has completed.
	GenerationHeader = "X-Relay-Generation"

	// AuthHeader carries a child relay's signature of a control-plane
	// request (pkg/treeauth):
	// "v1 t=<unix seconds>,g=<group>,n=<node>,b=<body sha256 hex>,m=<mac base64>".
	AuthHeader = "X-Relay-Auth"

	// BlobPathHeader names the catalog path of a BlobPrefix request.
	BlobPathHeader = "X-Relay-Blob-Path"

	// StoredOnlyHeader, set on a BlobPrefix request, makes the peer
	// answer 404 rather than fetch a blob it does not store.
	StoredOnlyHeader = "X-Relay-Blob-Stored-Only"

	// CacheHeader on an object response says where its bytes came from
	// (pkg/object: HIT, REVALIDATED, MISS, PEER, STALE).
	CacheHeader = "X-Relay-Cache"

	// AvailableDictionaryHeader (RFC 9842) names, as an sf-binary
	// ":<base64 sha-256>:", a blob the requester holds and will accept as
	// the dictionary of a dcz response.
	AvailableDictionaryHeader = "Available-Dictionary"
)

// Content codings relayd nodes send each other (Accept-Encoding and
// Content-Encoding values); digests stay over the decoded bytes.
const (
	// CodingZstd is Zstandard (RFC 8878).
	CodingZstd = "zstd"
	// CodingDcz is dictionary-compressed Zstandard (RFC 9842): a 40-byte
	// header naming the dictionary's sha-256, then a zstd frame with that
	// dictionary as raw content.
	CodingDcz = "dcz"
	// CodedVary is the Vary of an object response that may be encoded.
	CodedVary = "Accept-Encoding, Available-Dictionary"
)

// Query parameters of an agent's event stream (EventsPath).
const (
	// AgentParam is the agent's id (as AgentHeader).
	AgentParam = "agent"
	// GenerationParam is the catalog generation the agent holds.
	GenerationParam = "generation"
)
