package transport

import (
	"context"
	"crypto/tls"
)

// Peer is the remote end of a request a listener serves.
type Peer struct {
	// Addr is the remote network address.
	Addr string
	// TLS is the connection's TLS state; its VerifiedChains hold the client
	// certificate chains the handshake verified.
	TLS *tls.ConnectionState
}

type peerKey struct{}

// NewPeerContext returns ctx carrying p; listeners serving TLS set it so
// handlers and middleware can see the verified client certificate.
func NewPeerContext(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFromContext returns the peer a listener recorded for the current request;
// false on connections without TLS.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}
