package host_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microhost/micro/host"
)

const watchedMain = `package main

import (
	"context"
	"log"

	"github.com/microhost/micro/host"
)

type VersionRequest struct{}

type VersionResponse struct {
	Version string ` + "`json:\"version\"`" + `
}

type Echo struct{}

func (Echo) Version(ctx context.Context, req *VersionRequest) (*VersionResponse, error) {
	return &VersionResponse{Version: "VERSION"}, nil
}

func main() {
	if err := host.Run(context.Background(), host.WithHandler(Echo{})); err != nil {
		log.Fatal(err)
	}
}
`

type VersionRequest struct{}

type VersionResponse struct {
	Version string `json:"version"`
}

// TestWatchRebuildsAChangedService runs a package service with Watch on, edits
// its source, and sees the rebuilt service answer.
func TestWatchRebuildsAChangedService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	repo, _ := filepath.Abs("..")
	mod := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The service's module requires what the repository requires, plus the
	// repository itself through a replace.
	req := string(goMod[strings.Index(string(goMod), "require"):])
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/watched\n\ngo 1.26\n\nrequire github.com/microhost/micro v0.0.0\n\nreplace github.com/microhost/micro => "+repo+"\n\n"+req), 0o644)
	os.WriteFile(filepath.Join(mod, "go.sum"), sum, 0o644)
	src := filepath.Join(mod, "main.go")
	os.WriteFile(src, []byte(strings.Replace(watchedMain, "VERSION", "v1", 1)), 0o644)
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = mod
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "micro.hcl")
	os.WriteFile(cfg, []byte("service \"watched\" {\n  package = \""+mod+"\"\n}\n"), 0o644)

	h := runHost(t, host.WithConfigFile(cfg), host.Watch(true))
	version := func() string {
		var rsp VersionResponse
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Client().Call(ctx, "watched", "Echo.Version", &VersionRequest{}, &rsp); err != nil {
			return "error: " + err.Error()
		}
		return rsp.Version
	}
	if v := version(); v != "v1" {
		t.Fatalf("first build answers %q", v)
	}
	os.WriteFile(src, []byte(strings.Replace(watchedMain, "VERSION", "v2", 1)), 0o644)
	deadline := time.Now().Add(90 * time.Second)
	for version() != "v2" {
		if time.Now().After(deadline) {
			t.Fatalf("the edited service was not rebuilt: still %q", version())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
