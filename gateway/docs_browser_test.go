package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/sdk/registry"
)

// chromium returns the browser scripts/testenv provides, installing it on
// first use (so CI needs no setup step); MICRO_TESTENV=off skips instead.
func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("MICRO_TESTENV") == "off" {
		t.Skip("!!! SKIPPED: MICRO_TESTENV=off — this test needs a headless Chromium (scripts/testenv install chromium) !!!")
	}
	script, err := filepath.Abs("../scripts/testenv")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, "path", "chromium")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s path chromium: %v", script, err)
	}
	return strings.TrimSpace(string(out))
}

// TestDocsPageRendersInChromium loads /api/docs from a running gateway in
// headless Chromium and checks that Swagger UI, served by the gateway itself,
// rendered every route's operation.
func TestDocsPageRendersInChromium(t *testing.T) {
	browser := chromium(t)
	reg := registry.NewMemory()
	startBackend(t, reg, "users", Users{})
	startBackend(t, reg, "echo", &Echo{})
	_, base := startGateway(t, docsConfig(), reg)

	// The page must not reach out: every asset comes from the gateway.
	page := do(t, "GET", base+"/api/docs", "")
	if page.status != 200 || strings.Contains(page.body, "https://") || !strings.Contains(page.body, "/api/docs/swagger-ui-bundle.js") {
		t.Fatalf("docs page: %d %s", page.status, page.body)
	}
	for _, asset := range []string{"swagger-ui-bundle.js", "swagger-ui.css", "init.js"} {
		if r := do(t, "GET", base+"/api/docs/"+asset, ""); r.status != 200 || len(r.body) == 0 {
			t.Fatalf("%s: %d", asset, r.status)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=15000", "--dump-dom", base+"/api/docs")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	for _, want := range []string{
		`class="swagger-ui"`,
		"Test API",
		`data-path="/users/{id}"`,
		"Get a user",
		`data-path="/echo/{text}"`,
		`data-path="/dash/{id}"`,
		"opblock-get",
		"opblock-post",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM (%d bytes): %.3000s\nchromium stderr: %.2000s", len(dom), dom, stderr.String())
	}
}
