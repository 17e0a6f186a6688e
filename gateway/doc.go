// Package gateway is Microhost's API gateway: an http.Handler (and server)
// that routes HTTP requests to service endpoints found through the registry.
//
// Routes are net/http ServeMux patterns ("GET /users/{id}", "/files/{path...}")
// mapped to a service and endpoint; unmatched paths get 404 and a known path
// with another method gets 405 with Allow, both as application/problem+json.
// Reload swaps the whole route table atomically.
//
// A proxied call resolves the service through the watch-fed registry cache and
// a selector, and sends one request object: the body (JSON or msgpack, {} when
// empty), each query parameter it lacks, then each path parameter, which wins;
// query and path strings become numbers, booleans or arrays when the
// endpoint's published request schema says so. The call carries the request id
// (Micro-Request-Id, forwarded or generated), the client's Accept,
// Authorization and trace context, and Forwarded / X-Forwarded-* headers. The
// backend's body passes through in its codec; its error envelope becomes a
// problem document with the backend's status and Retry-After (an answer that
// is neither a success nor an error, such as a redirect, is a 502). A service
// name no service is registered under answers 503 without a breaker or metric
// series of its own, and metrics name an endpoint its service does not
// register "_other", so names taken from the path cannot grow them.
//
// Routes and aggregates may require a verified bearer token (Config.Auth as the
// default, Access per route) and roles (any or all of RequiredRoles): no or a
// bad token is a 401 with WWW-Authenticate, missing roles a 403. The verified
// caller reaches the backend only as an internal token signed by the gateway
// (metadata.Principal); identity headers sent by clients are never forwarded.
//
// Around each call: per-route timeout, retries (of 502, 503, 504 and
// connection failures; idempotent methods only unless opted in; per-try
// timeouts, jittered backoff) and a circuit breaker per backend service (open:
// 503 with Retry-After; calls that found no node to send to do not count). Backend policies allow or
// block endpoints (403 or 404). CORS applies globally or per route. Response
// transformations add, remove and rename fields. Aggregates call several
// endpoints in parallel under one deadline and merge the answers by name.
//
// The gateway also serves /health, /ready (503 while draining or before the
// registry cache synced), /metrics (Prometheus), /api/docs/openapi.json
// (OpenAPI 3.1) and /api/docs (Swagger UI, embedded). The document's schemas
// come from the services themselves: sdk/server publishes the JSON Schema of
// every endpoint's request and response in its registry metadata, so the
// gateway documents services it does not link; the Types option and a Route's
// Request and Response document an endpoint with Go types instead.
package gateway
