package transport

import (
	"context"
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
