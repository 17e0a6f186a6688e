package main_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelloworldEndToEnd builds the example service and client, runs them as a user
// would, and stops the service with SIGTERM.
func TestHelloworldEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	build := func(pkg, out string) string {
		bin := filepath.Join(dir, out)
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return bin
	}
	svcBin := build(".", "helloworld")
	cliBin := build("./client", "helloworld-client")

	svc := exec.Command(svcBin, "-addr", "127.0.0.1:0")
	stdout, _ := svc.StdoutPipe()
	var stderr strings.Builder
	svc.Stderr = &stderr
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Process.Kill(); svc.Wait() })

	lines := bufio.NewScanner(stdout)
	addr := ""
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "helloworld listening on "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatalf("the service never said where it listens; stderr:\n%s", stderr.String())
	}
	go func() {
		for lines.Scan() {
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cliBin, "-addr", addr, "-name", "Alice", "-count", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if got, want := string(out), "Hello Alice\n1\n2\n3\n"; got != want {
		t.Fatalf("client printed %q, want %q", got, want)
	}

	if err := svc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- svc.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("service exited with %v after SIGTERM; stderr:\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("service did not exit after SIGTERM")
	}
	for _, want := range []string{"service draining", "service stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("service log lacks %q:\n%s", want, stderr.String())
		}
	}
	_ = os.Remove(svcBin)
}
