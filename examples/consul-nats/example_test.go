package consulnats_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExample runs the example as its README says, against a real Consul agent
// and a real NATS server that scripts/testenv starts: plugins installed with
// `micro plugin install`, `micro run`, an order placed with `micro call`, the
// mail it caused read back, both services visible in Consul's catalog and gone
// from it after SIGTERM.
func TestExample(t *testing.T) {
	if os.Getenv("MICRO_TESTENV") == "off" {
		t.Skip("!!! SKIPPED: MICRO_TESTENV=off — this example needs a real Consul and NATS (scripts/testenv) !!!")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "MICRO_TESTENV_RUN="+filepath.Join(dir, "run"), "MICRO_PLUGIN_DIR="+filepath.Join(dir, "plugins"))
	testenv := func(args ...string) string {
		cmd := exec.Command(filepath.Join(repo, "scripts/testenv"), args...)
		cmd.Env = env
		cmd.Stderr = os.Stderr // a first build takes minutes: show progress
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("scripts/testenv %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	t.Cleanup(func() { testenv("stop", "all") })
	var consul string
	for _, server := range []string{"consul", "nats"} {
		// start prints `export NAME=value`.
		name, value, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(testenv("start", server)), "export "), "=")
		env = append(env, name+"="+value)
		if name == "CONSUL_HTTP_ADDR" {
			consul = value
		}
	}

	build := func(out, pkg string) string {
		bin := filepath.Join(dir, "bin", out)
		if b, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return bin
	}
	micro := build("micro", filepath.Join(repo, "cmd/micro"))
	run := func(ctx context.Context, args ...string) string {
		cmd := exec.CommandContext(ctx, micro, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("micro %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run(ctx, "plugin", "install", build("micro-registry-consul", filepath.Join(repo, "plugins/registry-consul")))
	run(ctx, "plugin", "install", build("micro-broker-nats", filepath.Join(repo, "plugins/broker-nats")))

	// The example's micro.hcl, its packages made absolute for the temp dir.
	hcl, err := os.ReadFile("micro.hcl")
	if err != nil {
		t.Fatal(err)
	}
	here, _ := os.Getwd()
	cfg := strings.NewReplacer(`"./orders"`, `"`+filepath.Join(here, "orders")+`"`, `"./mailer"`, `"`+filepath.Join(here, "mailer")+`"`).Replace(string(hcl))
	if err := os.WriteFile(filepath.Join(dir, "micro.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	host := exec.Command(micro, "run")
	host.Dir, host.Env = dir, env
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	host.Stderr = &stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "ready in ") {
	}
	if lines.Err() != nil || !strings.HasPrefix(lines.Text(), "ready in ") {
		t.Fatalf("micro run never got ready:\n%s", stderr.String())
	}
	go func() {
		for lines.Scan() {
		}
	}()

	out := run(ctx, "call", "orders", "Orders.Place", `{"email":"ada@example.com","item":"teapot"}`)
	var placed struct{ ID string }
	if err := json.Unmarshal([]byte(out), &placed); err != nil || placed.ID == "" {
		t.Fatalf("Orders.Place answered %q (%v)", out, err)
	}
	want := fmt.Sprintf("Your teapot is on its way (%s)", placed.ID)
	eventually(t, 30*time.Second, "the mail for "+placed.ID, func() error {
		if out := run(ctx, "call", "mailer", "Mailer.Sent", `{}`); !strings.Contains(out, want) {
			return fmt.Errorf("Mailer.Sent = %s", out)
		}
		return nil
	})
	for _, svc := range []string{"orders", "mailer"} {
		if tags := catalogTags(t, consul, svc); !strings.Contains(tags, "version=1.0.0") {
			t.Errorf("Consul's catalog has %s with tags %s, want version=1.0.0", svc, tags)
		}
	}

	if err := host.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := host.Wait(); err != nil {
		t.Fatalf("micro run exited with %v after SIGTERM:\n%s", err, stderr.String())
	}
	for _, svc := range []string{"orders", "mailer"} {
		if tags := catalogTags(t, consul, svc); tags != "" {
			t.Errorf("%s is still in Consul's catalog after micro run stopped: %s", svc, tags)
		}
	}
}

// catalogTags returns the tags of svc's instances in Consul's catalog, "" when
// it has none.
func catalogTags(t *testing.T, consul, svc string) string {
	t.Helper()
	resp, err := http.Get("http://" + consul + "/v1/catalog/service/" + svc)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []struct{ ServiceTags []string }
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatalf("catalog/service/%s: %v", svc, err)
	}
	var tags []string
	for _, e := range entries {
		tags = append(tags, e.ServiceTags...)
	}
	return strings.Join(tags, ",")
}

// eventually polls f until it returns nil, failing t with f's last error after
// within.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
