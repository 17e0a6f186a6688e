package transport

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// connKeys returns how many addresses t keeps connection counts for.
func connKeys(t *HTTP) int {
	t.connsMu.Lock()
	defer t.connsMu.Unlock()
	return len(t.conns)
}

// TestConnCountsAreForgotten checks that an address with no pool and no open
// connection leaves nothing behind, whether its Conn was closed or the health
// loop forgot its pool.
func TestConnCountsAreForgotten(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	pool := Pool(PoolOptions{IdleTimeout: 20 * time.Millisecond})
	cases := []struct {
		name   string
		health time.Duration
		close  bool
	}{
		{"conn closed", -1, true},
		{"pool forgotten by the health loop", time.Millisecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewHTTP(HealthInterval(tc.health), pool)
			defer tr.Close()
			conn, err := tr.Dial(context.Background(), addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Call(context.Background(), &Message{Header: map[string]string{}}); err != nil {
				t.Fatal(err)
			}
			if tc.close {
				if n := connKeys(tr); n != 1 {
					t.Fatalf("%d addresses counted with a pool and a connection, want 1", n)
				}
				conn.Close()
			}
			deadline := time.Now().Add(10 * time.Second)
			for connKeys(tr) != 0 || len(tr.Stats()) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d addresses still counted, stats %+v, want none once the pool is gone and the connection closed", connKeys(tr), tr.Stats())
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
}

// TestEndpoint names every spelling of an address as host:port with the
// scheme's default port and the host name in lower case, and returns an address that names its port as it is,
// without allocating: Dial and Healthy normalise on every call.
func TestEndpoint(t *testing.T) {
	plain, secure := NewHTTP(HealthInterval(-1)), NewHTTP(HealthInterval(-1), ClientTLS(&tls.Config{}))
	t.Cleanup(func() { plain.Close(); secure.Close() })
	cases := []struct {
		tr         *HTTP
		addr, want string
	}{
		{plain, "svc", "svc:80"},
		{plain, "svc:", "svc:80"},
		{plain, "svc:8080", "svc:8080"},
		{secure, "svc", "svc:443"},
		{secure, "svc:80", "svc:80"},
		{plain, "10.0.0.1", "10.0.0.1:80"},
		{plain, "[::1]", "[::1]:80"},
		{plain, "::1", "[::1]:80"},
		{secure, "[::1]:", "[::1]:443"},
		{plain, "[::1]:9000", "[::1]:9000"},
		{plain, "Svc.Example:8080", "svc.example:8080"},
		{secure, "SVC", "svc:443"},
		{plain, "[FE80::1%Eth0]:9000", "[fe80::1%Eth0]:9000"}, // the zone is the system's
	}
	for _, tc := range cases {
		if got := tc.tr.endpoint(tc.addr); got != tc.want {
			t.Errorf("%s endpoint(%q) = %q, want %q", tc.tr.scheme, tc.addr, got, tc.want)
		}
	}
	addr := "10.0.0.1:8080"
	if n := testing.AllocsPerRun(100, func() { addr = plain.endpoint(addr) }); n != 0 {
		t.Errorf("endpoint of an address naming its port allocates %v times", n)
	}
}

// TestHealthyUnderEitherSpelling reports an endpoint's last health check
// whichever spelling of it is asked about.
func TestHealthyUnderEitherSpelling(t *testing.T) {
	tr := NewHTTP(HealthInterval(-1))
	t.Cleanup(func() { tr.Close() })
	if _, err := tr.Dial(context.Background(), "svc.invalid"); err != nil {
		t.Fatal(err)
	}
	tr.live("svc.invalid:80").pool.healthy.Store(false)
	for _, addr := range []string{"svc.invalid", "svc.invalid:80"} {
		if tr.Healthy(addr) {
			t.Errorf("Healthy(%q) = true, want the endpoint's failed check", addr)
		}
	}
}
