package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/microhost/micro/gateway"
	"github.com/microhost/micro/sdk/registry"
	"github.com/microhost/micro/sdk/service"
)

// PingRequest and PingResponse are the small JSON of the benchmarks.
type PingRequest struct {
	Name string `json:"name"`
}

type PingResponse struct {
	Message string `json:"message"`
}

// Bench is the benchmarks' backend.
type Bench struct{}

// Ping answers at once.
func (Bench) Ping(ctx context.Context, req *PingRequest) (*PingResponse, error) {
	return &PingResponse{Message: "hello " + req.Name}, nil
}

// benchTarget runs a backend and a gateway in front of it and returns the
// URLs of the same call through the gateway and straight to the backend.
func benchTarget(tb testing.TB) (viaGateway, direct string) {
	reg := registry.NewMemory()
	be := startBackend(tb, reg, "bench", Bench{})
	_, base := startGateway(tb, gateway.Config{Routes: []*gateway.Route{
		{Pattern: "POST /ping", Service: "bench", Endpoint: "Bench.Ping"},
	}}, reg)
	return base + "/ping", "http://" + be.svc.Addr() + "/Bench.Ping"
}

// benchClient keeps enough idle connections for every parallel caller.
func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true}}
}

var pingBody = []byte(`{"name":"bench"}`)

func post(c *http.Client, url string) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(pingBody))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

func runParallel(b *testing.B, url string) {
	c := benchClient()
	if err := post(c, url); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := post(c, url); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGatewayProxy is a small JSON call through the gateway; compare
// with BenchmarkDirect, the same call straight to the backend.
func BenchmarkGatewayProxy(b *testing.B) {
	via, _ := benchTarget(b)
	runParallel(b, via)
}

// BenchmarkDirect is BenchmarkGatewayProxy's reference.
func BenchmarkDirect(b *testing.B) {
	_, direct := benchTarget(b)
	runParallel(b, direct)
}

// BenchmarkGatewayOwnWork is BenchmarkGatewayProxy with a backend whose
// handler the gateway calls in process: what is left is the client's HTTP
// exchange with the gateway and the gateway's own work (routing, codecs,
// selection, headers, metrics). Its distance to BenchmarkGatewayProxy is the
// price of the network hop to the backend.
func BenchmarkGatewayOwnWork(b *testing.B) {
	reg := registry.NewMemory()
	tr := &inProcess{}
	svc := service.New("bench", service.Registry(reg), service.Transport(tr), service.HandleSignals(false))
	if err := svc.Handle(Bench{}); err != nil {
		b.Fatal(err)
	}
	runBackend(b, svc)
	_, base := startGateway(b, gateway.Config{Routes: []*gateway.Route{
		{Pattern: "POST /ping", Service: "bench", Endpoint: "Bench.Ping"},
	}}, reg, gateway.Transport(tr))
	runParallel(b, base+"/ping")
}

// TestLoadRun is a bounded load run on loopback: MICRO_GATEWAY_LOAD=N sends N
// requests (within 60s) from 32 concurrent callers through the gateway and
// straight to the backend, and logs p50, p99 and throughput of each. It is a
// measuring tool, so it runs only when asked.
func TestLoadRun(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MICRO_GATEWAY_LOAD"))
	if n <= 0 {
		t.Skip("set MICRO_GATEWAY_LOAD=<requests> to run the load run")
	}
	via, direct := benchTarget(t)
	for _, tc := range []struct{ name, url string }{{"direct", direct}, {"gateway", via}} {
		lat, took, err := load(tc.url, n, 32, 60*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		slices.Sort(lat)
		p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
		t.Logf("%-8s %6d requests in %6s: %7.0f req/s  p50 %8s  p99 %8s",
			tc.name, len(lat), took.Round(time.Millisecond), float64(len(lat))/took.Seconds(), p(0.50), p(0.99))
	}
}

// load sends n requests from c concurrent callers, stopping early at limit,
// and returns each request's latency.
func load(url string, n, c int, limit time.Duration) ([]time.Duration, time.Duration, error) {
	client := benchClient()
	for range c { // warm the connection pools
		if err := post(client, url); err != nil {
			return nil, 0, err
		}
	}
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	deadline := time.Now().Add(limit)
	results := make([][]time.Duration, c)
	errs := make([]error, c)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				if err := post(client, url); err != nil {
					errs[i] = err
					return
				}
				results[i] = append(results[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	var all []time.Duration
	for i := range c {
		if errs[i] != nil {
			return nil, 0, errs[i]
		}
		all = append(all, results[i]...)
	}
	return all, took, nil
}
