// Package auth authenticates calls and authorizes them: it verifies JWTs (static
// keys, PEM files or a JWKS URL), turns mutual-TLS client certificates into
// identities, carries the resulting Principal in the context, and enforces RBAC
// guards per endpoint as server middleware.
//
// A principal only ever comes from something the server can verify: a bearer
// token signed by a configured key, a client certificate checked by the TLS
// handshake, or an internal token (metadata.Principal) signed by a trusted
// upstream such as the gateway. Headers that merely claim an identity are
// removed before any handler sees them.
package auth
