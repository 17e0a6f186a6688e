package plugins_test

import (
	"bytes"
	"context"
	"crypto/tls"
	stderrors "errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
	"github.com/microhost/micro/sdk/telemetry"
	"github.com/microhost/micro/sdk/transport"
)

// The data path: a transport plugin's unary calls and the requests of its
// listeners cross as binary frames on a mutual-TLS loopback connection instead
// of gRPC messages. These tests drive it through a plugin process the manager
// started, and tell the paths apart by the host's count of gRPC calls to the
// plugin (micro_plugin_calls_total).

// Headers of the test handler; the http transport carries Micro-* headers.
const (
	hBlock = "Micro-Test-Block"
	hBig   = "Micro-Test-Big"
	hID    = "Micro-Test-Id"
	hEcho  = "Micro-Test-Echo"
)

const (
	methodDataPath = "micro.plugin.v1.Transport/DataPath"
	methodCalls    = "micro.plugin.v1.Transport/Calls"
	methodCall     = "micro.plugin.v1.Transport/Call"
)

// dpPlugin is a transport plugin process, its transport, and the registry that
// counts the host's gRPC calls to it.
type dpPlugin struct {
	inst *plugins.Instance
	tr   transport.Transport
	reg  *prometheus.Registry
}

// startDP starts the plugin id under a manager that counts its calls.
func startDP(t *testing.T, id string) *dpPlugin {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, _ := newManager(t, func(o *plugins.Options) { o.Telemetry = telemetry.New(telemetry.WithRegisterer(reg)) })
	inst := startPlugin(t, m, spec(t, id))
	tr := inst.Transport()
	t.Cleanup(func() { tr.Close() })
	return &dpPlugin{inst: inst, tr: tr, reg: reg}
}

// grpcCalls counts the host's gRPC calls of method to the plugin, by code.
func (p *dpPlugin) grpcCalls(t *testing.T, method string) map[string]int {
	t.Helper()
	fams, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range fams {
		if f.GetName() != "micro_plugin_calls_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method {
				out[labels["code"]] += int(m.GetCounter().GetValue())
			}
		}
	}
	return out
}

// dpHandler echoes requests. Header hBlock makes a request wait until release
// closes or its context ends, and report on started first; header hBig answers
// with that many bytes.
type dpHandler struct {
	started chan struct{}
	release chan struct{}
}

func newDPHandler() *dpHandler {
	return &dpHandler{started: make(chan struct{}, 64), release: make(chan struct{})}
}

func (h *dpHandler) ServeRequest(ctx context.Context, req *transport.Message) *transport.Message {
	if _, ok := req.Header[hBlock]; ok {
		h.started <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	}
	if n, err := strconv.Atoi(req.Header[hBig]); err == nil {
		return &transport.Message{Header: map[string]string{}, Body: bytes.Repeat([]byte("b"), n)}
	}
	return &transport.Message{Header: map[string]string{hEcho: req.Header[hID]}, Body: req.Body}
}

func (h *dpHandler) ServeStream(ctx context.Context, header map[string]string, s transport.Stream) error {
	return errors.New("", 501, "no streams here")
}

// listenDP listens through the plugin with h and returns the bound address.
func listenDP(t *testing.T, p *dpPlugin, h transport.Handler) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := p.tr.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ln.Serve(h) }()
	t.Cleanup(func() {
		ln.Close()
		<-served
	})
	return ln.Addr()
}

// dpCall makes one call through the plugin's transport.
func dpCall(ctx context.Context, tr transport.Transport, addr string, header map[string]string, body []byte) (*transport.Message, error) {
	conn, err := tr.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	header[metadata.Endpoint] = "Echo.Say"
	return conn.Call(ctx, &transport.Message{Header: header, Body: body})
}

func dpCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDataPathConcurrentCalls(t *testing.T) {
	p := startDP(t, "transport-http")
	addr := listenDP(t, p, newDPHandler())
	ctx := dpCtx(t)

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := fmt.Sprintf("%d-%d", g, i)
				body := bytes.Repeat([]byte(id), 1+i*40)
				resp, err := dpCall(ctx, p.tr, addr, map[string]string{hID: id}, body)
				if err != nil {
					errs <- fmt.Errorf("call %s: %w", id, err)
					return
				}
				if resp.Header[hEcho] != id || !bytes.Equal(resp.Body, body) {
					errs <- fmt.Errorf("call %s answered %v with %d bytes", id, resp.Header, len(resp.Body))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := p.grpcCalls(t, methodDataPath); got["OK"] != 1 {
		t.Errorf("DataPath calls = %v, want one OK", got)
	}
	if got := p.grpcCalls(t, methodCalls); len(got) != 0 {
		t.Errorf("Calls streams opened = %v, want none: calls go over the data path", got)
	}
}

func TestDataPathDeadlineAndCancel(t *testing.T) {
	p := startDP(t, "transport-http")
	h := newDPHandler()
	addr := listenDP(t, p, h)
	t.Cleanup(func() { close(h.release) })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := dpCall(ctx, p.tr, addr, map[string]string{hBlock: "1"}, []byte("slow"))
	if !stderrors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("call past its 300ms deadline took %s", d)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	go func() {
		<-h.started
		<-h.started // the first call's request, then this one's
		ccancel()
	}()
	_, err = dpCall(cctx, p.tr, addr, map[string]string{hBlock: "1"}, []byte("cancelled"))
	if !stderrors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call = %v, want context.Canceled", err)
	}

	resp, err := dpCall(dpCtx(t), p.tr, addr, map[string]string{hID: "after"}, []byte("ok"))
	if err != nil || string(resp.Body) != "ok" {
		t.Fatalf("call after the deadline and cancel = %v, %v", resp, err)
	}
}

func TestDataPathOversizedBody(t *testing.T) {
	p := startDP(t, "transport-http")
	addr := listenDP(t, p, newDPHandler())
	ctx := dpCtx(t)

	// The host refuses a request too big for the boundary before sending it.
	_, err := dpCall(ctx, p.tr, addr, map[string]string{}, bytes.Repeat([]byte("x"), 5<<20))
	if errors.Code(err) != 413 || stderrors.Is(err, transport.ErrNotSent) {
		t.Fatalf("5 MiB call = %v, want a 413 that is not retried", err)
	}
	// The plugin refuses a request its listener got that is too big to forward.
	direct := transport.NewHTTP(transport.MaxBodyBytes(8 << 20))
	t.Cleanup(func() { direct.Close() })
	resp, err := dpCall(ctx, direct, addr, map[string]string{}, bytes.Repeat([]byte("x"), 4<<20))
	if err != nil || resp.Header[metadata.Status] != "413" {
		var h map[string]string
		if resp != nil {
			h = resp.Header
		}
		t.Fatalf("4 MiB request to the plugin's listener = %v, %v, want a 413 envelope", h, err)
	}
	// A response too big for the boundary becomes a 502 envelope, from the
	// host's listener and from the plugin's call alike.
	big4 := map[string]string{hBig: strconv.Itoa(transport.DefaultMaxBodyBytes)}
	resp, err = dpCall(ctx, p.tr, addr, big4, nil)
	if err != nil || resp.Header[metadata.Status] != "502" {
		t.Fatalf("call the host's listener answered with 4 MiB = %v, want a 502 envelope", err)
	}
	ln, err := direct.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ln.Serve(newDPHandler())
	t.Cleanup(func() { ln.Close() })
	_, err = dpCall(ctx, p.tr, ln.Addr(), big4, nil)
	if errors.Code(err) != 502 {
		t.Fatalf("call answered with 4 MiB by a server outside = %v, want a 502", err)
	}
	// The connection survived all of it: the same data path serves a large call.
	big := bytes.Repeat([]byte("y"), 3<<20)
	resp, err = dpCall(ctx, p.tr, addr, map[string]string{hID: hBig}, big)
	if err != nil || !bytes.Equal(resp.Body, big) {
		t.Fatalf("3 MiB call after the refusals = %v", err)
	}
	if got := p.grpcCalls(t, methodDataPath); got["OK"] != 1 {
		t.Errorf("DataPath calls = %v, want one OK: no refusal may break the connection", got)
	}
}

func TestDataPathPluginKilled(t *testing.T) {
	p := startDP(t, "transport-http")
	h := newDPHandler()
	addr := listenDP(t, p, h)
	t.Cleanup(func() { close(h.release) })
	ctx := dpCtx(t)

	const inFlight = 8
	results := make(chan error, inFlight)
	for i := range inFlight {
		go func() {
			_, err := dpCall(ctx, p.tr, addr, map[string]string{hBlock: "1", hID: strconv.Itoa(i)}, []byte("stuck"))
			results <- err
		}()
	}
	for range inFlight {
		select {
		case <-h.started:
		case <-ctx.Done():
			t.Fatal("the calls never reached the handler")
		}
	}
	pid := p.inst.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for range inFlight {
		select {
		case err := <-results:
			if errors.Code(err) != 503 {
				t.Errorf("call in flight when the plugin died = %v, want a 503", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a call in flight when the plugin died still hangs after 5s")
		}
	}
	t.Logf("calls in flight failed within %s of the kill", time.Since(killed).Round(time.Millisecond))

	// The supervisor restarts the plugin; the listener binds its address again
	// and calls cross the data path of the new process.
	waitFor(t, func() bool { return p.inst.Restarts() > 0 && p.inst.Pid() != 0 && p.inst.Pid() != pid }, "the plugin's restart")
	waitFor(t, func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := dpCall(cctx, p.tr, addr, map[string]string{hID: "again"}, []byte("back"))
		return err == nil && string(resp.Body) == "back"
	}, "a call through the restarted plugin")
	// The re-opened listener waited for the new process's data path. (Calls
	// made while it connects may take the gRPC channel rather than wait: see
	// sdk/plugin's TestDataPathDoesNotHoldCallsUp.)
	if got := p.grpcCalls(t, methodDataPath); got["OK"] < 2 {
		t.Errorf("DataPath calls = %v, want one OK per process", got)
	}
}

func TestDataPathFallbackToGRPC(t *testing.T) {
	p := startDP(t, "transport-grpconly")
	addr := listenDP(t, p, newDPHandler())
	ctx := dpCtx(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := fmt.Sprintf("%d-%d", g, i)
				resp, err := dpCall(ctx, p.tr, addr, map[string]string{hID: id}, []byte(id))
				if err != nil || resp.Header[hEcho] != id {
					t.Errorf("call %s over gRPC = %v, %v", id, resp, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := p.grpcCalls(t, methodDataPath); got["Unimplemented"] != 1 || len(got) != 1 {
		t.Errorf("DataPath calls = %v, want one Unimplemented: the host asks once per process", got)
	}
	if got := p.grpcCalls(t, methodCalls); got["OK"] < 1 {
		t.Errorf("Calls streams = %v, want calls on the gRPC Calls stream", got)
	}
}

func TestDataPathRefusesStrangers(t *testing.T) {
	p := startDP(t, "transport-http")
	cc, err := p.inst.Current()
	if err != nil {
		t.Fatal(err)
	}
	ctx := dpCtx(t)
	ep, err := pluginv1.NewTransportClient(cc).DataPath(ctx, &pluginv1.DataPathRequest{Versions: []uint32{1}})
	if err != nil || ep.GetAddress() == "" {
		t.Fatalf("DataPath = %v, %v", ep, err)
	}
	other, err := plugin.NewHostTLS()
	if err != nil {
		t.Fatal(err)
	}
	otherHost := other.ClientConfig()
	otherHost.InsecureSkipVerify = true // the plugin's refusal is under test, not ours
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":      {InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
		"another host's certificate": otherHost,
	} {
		t.Run(name, func(t *testing.T) {
			d := tls.Dialer{Config: cfg}
			nc, err := d.DialContext(ctx, ep.GetNetwork(), ep.GetAddress())
			if err != nil {
				return // refused during the handshake
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
			// The plugin's first frame numbers the connection; a stranger gets
			// none: the handshake fails on the plugin's side and it hangs up.
			n, err := io.ReadFull(nc, make([]byte, 4))
			if err == nil || n != 0 {
				t.Fatalf("a stranger read %d bytes of the data path (%v)", n, err)
			}
			var ne interface{ Timeout() bool }
			if stderrors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the plugin neither served nor refused a stranger: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}
