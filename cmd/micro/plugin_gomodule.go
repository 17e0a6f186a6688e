package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// splitModuleSource splits "path@version" and checks its shape; the go command
// judges the rest.
func splitModuleSource(source string) (pkg, version string, err error) {
	pkg, version, ok := strings.Cut(source, "@")
	switch {
	case !ok:
		return "", "", usageErrorf("plugin install: %s has no @version; give a Go module source as path@version (e.g. example.com/plugins/cmd/micro-registry-x@v1.2.0, or @latest)", source)
	case pkg == "" || version == "":
		return "", "", usageErrorf("plugin install: %s is not path@version (e.g. example.com/plugins/cmd/micro-registry-x@v1.2.0)", source)
	case strings.Contains(version, "@"), strings.ContainsAny(source, " \t\n"), strings.HasPrefix(pkg, "-"):
		return "", "", usageErrorf("plugin install: %q is not a Go module path@version", source)
	}
	return pkg, version, nil
}

// buildGoModule builds source (path@version) with `go install` into a fresh
// GOBIN under tmp and returns the binary it made.
func (a *app) buildGoModule(ctx context.Context, source, tmp string) (string, error) {
	if _, _, err := splitModuleSource(source); err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("cannot install %s: building a Go module needs the go command, which is not on PATH: install Go (https://go.dev/dl) or install the plugin from a binary or an archive", source)
	}
	gobin := filepath.Join(tmp, "gobin")
	work := filepath.Join(tmp, "work") // outside any module or workspace
	for _, d := range []string{gobin, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, goTool, "install", "-trimpath", source)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off")
	cmd.Env = append(cmd.Env, a.goEnv...)
	// go's progress and errors go to the user as they come, and are kept for
	// the error message. One writer for both, so exec serializes the writes.
	var tail bytes.Buffer
	out := io.MultiWriter(a.stderr, &tail)
	cmd.Stdout, cmd.Stderr = out, out
	fmt.Fprintf(a.stderr, "building %s with go install\n", source)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cannot install %s: `go install %s` failed (%v): %s; check the module path and version", source, source, err, lastLine(tail.String()))
	}
	entries, err := os.ReadDir(gobin)
	if err != nil {
		return "", err
	}
	var bins []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			bins = append(bins, e.Name())
		}
	}
	if len(bins) != 1 {
		return "", fmt.Errorf("cannot install %s: `go install` made %d binaries (%s), expected one; is %s a main package?", source, len(bins), listOrNone(bins), source)
	}
	return filepath.Join(gobin, bins[0]), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
