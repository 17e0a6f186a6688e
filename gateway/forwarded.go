package gateway

import (
	"net"
	"net/http"
	"strings"

	"github.com/microhost/micro/sdk/metadata"
)

// forwardedFromClient are the request headers a backend call carries on.
var forwardedFromClient = []string{metadata.Accept, metadata.Auth, metadata.TraceParent, metadata.TraceState, metadata.Baggage}

// outHeader builds the metadata of a backend call for r: the target, the
// body's content type, the request id, the client's Accept, auth and trace
// context, and Forwarded / X-Forwarded-* naming the client and how it came in:
// Forwarded, X-Forwarded-Host and X-Forwarded-Proto from the connection (any
// sent by the client are replaced), X-Forwarded-For appended to.
func (st *state) outHeader(r *http.Request, requestID, service, endpoint, contentType string) map[string]string {
	h := make(map[string]string, 16) // room for what follows, Micro-Timeout and the trace context
	h[metadata.Service] = service
	h[metadata.Endpoint] = endpoint
	h[metadata.ContentType] = contentType
	h[metadata.RequestID] = requestID
	for _, k := range forwardedFromClient {
		if v := r.Header.Get(k); v != "" {
			h[k] = v
		}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	node := client
	if strings.Contains(client, ":") {
		node = `"[` + client + `]"` // RFC 7239: IPv6 is bracketed and quoted
	}
	// The gateway is the edge: what a client claims about the host and the
	// scheme is not evidence, so those come from the connection alone. The
	// chain of client addresses is kept, the gateway's peer last.
	h[metadata.Forwarded] = "for=" + node + ";host=" + quoteIfNeeded(r.Host) + ";proto=" + proto
	xff := client
	if prev := strings.Join(r.Header.Values(metadata.ForwardedFor), ", "); prev != "" {
		xff = prev + ", " + client
	}
	h[metadata.ForwardedFor] = xff
	h[metadata.ForwardedHost] = r.Host
	h[metadata.ForwardedProto] = proto
	return h
}

// quoteIfNeeded quotes a Forwarded value that is not a plain token (host:port is not).
func quoteIfNeeded(s string) string {
	if isToken(s) && !strings.Contains(s, ":") {
		return s
	}
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
