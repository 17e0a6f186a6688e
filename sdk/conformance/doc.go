// Package conformance holds the public test suites every implementation of a
// Microhost contract must pass: Registry, Broker, Transport and Codec. The
// built-ins run them in process, the same built-ins run them again served as
// plugins over gRPC, and third-party plugins (Consul, NATS, ...) run them against
// real servers.
//
// The suites test the contract only, through the interfaces in sdk/registry,
// sdk/broker, sdk/transport and sdk/codec. They use names unique to each run, so
// several runs can share one real server; they clean up what they create with
// t.Cleanup; and they wait by polling with deadlines, never by sleeping, so slow
// backends pass given a larger Timeout. Options adapt a suite to a backend's
// documented limits (SkipTTL, TTL, SkipOrdering, ExpectNotSent) and latency
// (Timeout, Quiet).
//
// A plugin author runs a suite from an ordinary test; the constructor is called
// once per subtest and closes what it opens with t.Cleanup:
//
//	func TestConformance(t *testing.T) {
//		conformance.Registry(t, func(t *testing.T) registry.Registry {
//			r := consulregistry.New(os.Getenv("CONSUL_ADDR"))
//			t.Cleanup(func() { r.Close() })
//			return r
//		}, conformance.TTL(10*time.Second), conformance.Timeout(30*time.Second))
//	}
//
// Run it with go test -race; each suite is a tree of subtests, so
// -run 'TestConformance/Watch' runs one check.
package conformance
