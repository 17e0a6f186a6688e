package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"no command", nil, exitUsage, []string{"Usage:", "plugin"}},
		{"help", []string{"help"}, exitOK, []string{"Commands:", "plugin", "help"}},
		{"--help", []string{"--help"}, exitOK, []string{"Commands:"}},
		{"help plugin", []string{"help", "plugin"}, exitOK, []string{"install", "list", "verify", "remove", "--lock", "--dir"}},
		{"help plugin install", []string{"help", "plugin", "install"}, exitOK, []string{"Usage: micro plugin install", "SHA256SUMS", "path@version", "-lock"}},
		{"help unknown", []string{"help", "frobnicate"}, exitUsage, []string{`"frobnicate"`, "plugin"}},
		{"unknown command", []string{"frobnicate"}, exitUsage, []string{`unknown command "frobnicate"`, "the commands are: run, services, call, config, plugin"}},
		{"plugin --help", []string{"plugin", "--help"}, exitOK, []string{"micro plugin <command>", "install", "verify"}},
		{"plugin alone", []string{"plugin"}, exitUsage, []string{"missing command", "install, list, verify, remove"}},
		{"plugin unknown", []string{"plugin", "frob"}, exitUsage, []string{`unknown command "frob"`, "install, list, verify, remove"}},
		{"install --help", []string{"plugin", "install", "--help"}, exitOK, []string{"Usage: micro plugin install [flags] <source>", "-dir"}},
		{"install no source", []string{"plugin", "install", "--lock", c.lock, "--dir", c.dir}, exitUsage, []string{"takes one source"}},
		{"install two sources", []string{"plugin", "install", "a", "b", "--lock", c.lock}, exitUsage, []string{"takes one source", "got 2"}},
		{"bad flag", []string{"plugin", "list", "--nope"}, exitUsage, []string{"flag provided but not defined: -nope", "micro plugin list --help"}},
		{"flag without value", []string{"plugin", "list", "--lock"}, exitUsage, []string{"flag needs an argument"}},
		{"list with args", []string{"plugin", "list", "x", "--lock", c.lock}, exitUsage, []string{"takes no arguments"}},
		{"remove no id", []string{"plugin", "remove", "--lock", c.lock}, exitUsage, []string{"takes one plugin id"}},
		{"unsupported URL scheme", []string{"plugin", "install", "ftp://example.com/x.tar.gz", "--lock", c.lock, "--dir", c.dir}, exitUsage, []string{"only http:// and https://"}},
		{"archive URL without extension", []string{"plugin", "install", "http://127.0.0.1:1/micro-codec-x", "--lock", c.lock, "--dir", c.dir}, exitUsage, []string{".tar.gz, .tgz or .zip"}},
		{"run --help", []string{"run", "--help"}, exitOK, []string{"micro run [flags] [file]", "embedded default", "--gateway ADDR"}},
		{"services --help", []string{"services", "-h"}, exitOK, []string{"micro services [--dir DIR]"}},
		{"call --help", []string{"call", "--help"}, exitOK, []string{"<service> <Handler.Method>", "--token"}},
		{"call with bad JSON", []string{"call", "greeter", "Greeter.Hello", `{"name":`}, exitUsage, []string{`the request "{\"name\":" is not valid JSON (unexpected end of JSON input)`, "quote it for the shell"}},
		{"call with a bare word", []string{"call", "greeter", "Greeter.Hello", "Alice"}, exitUsage, []string{"not valid JSON (invalid character 'A'"}},
		{"config --help", []string{"config", "--help"}, exitOK, []string{"micro config validate", "micro config default", "--var NAME=VALUE"}},
		{"config validate --help", []string{"config", "validate", "--help"}, exitOK, []string{"micro config validate", "--var NAME=VALUE"}},
		{"help config validate", []string{"help", "config", "validate"}, exitOK, []string{"micro config validate"}},
		{"config validate bad flag", []string{"config", "validate", "--nope"}, exitUsage, []string{"flag provided but not defined: -nope", "micro config validate --help"}},
		{"config validate two files", []string{"config", "validate", "a.hcl", "b.hcl"}, exitUsage, []string{"one file at most"}},
		{"config default with args", []string{"config", "default", "extra"}, exitUsage, []string{"config default takes no arguments"}},
		{"config default --help", []string{"config", "default", "--help"}, exitOK, []string{"micro config default"}},
		{"no such file", []string{"plugin", "install", "./no/such/plugin", "--lock", c.lock, "--dir", c.dir}, exitError, []string{"./no/such/plugin is not a file", "path@version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, c.run(tt.args...), tt.code, tt.wants...)
		})
	}
}

// TestCallHelpHidesToken checks that the help of micro call does not print the
// bearer token it would send.
func TestCallHelpHidesToken(t *testing.T) {
	t.Setenv("MICRO_TOKEN", "eyJ.secret.token")
	r := newCLI(t).run("call", "--help")
	expect(t, r, exitOK, "--token")
	if strings.Contains(r.stdout+r.stderr, "eyJ.secret.token") {
		t.Fatalf("micro call --help prints $MICRO_TOKEN:\n%s", r.stdout)
	}
}

// TestRunEntryPoint checks that run writes where it is told and returns the exit code.
func TestRunEntryPoint(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"help"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "Commands:") {
		t.Fatalf("run help: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if code := run(context.Background(), []string{"nope"}, io.Discard, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("run nope: code %d, stderr %q", code, errOut.String())
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	c := newCLI(t)
	// Flags before, after and around the positional argument, and -- to end flags.
	for _, args := range [][]string{
		{"plugin", "list", "--lock", c.lock, "--dir", c.dir},
		{"plugin", "list", "-lock=" + c.lock, "-dir", c.dir},
	} {
		expect(t, c.run(args...), exitOK, "no plugins in "+c.lock)
	}
	expect(t, c.run("plugin", "remove", "--lock", c.lock, "--", "-weird-id"), exitError, "plugin -weird-id is not in")
}

func TestLockFileErrors(t *testing.T) {
	c := newCLI(t)
	if err := writeFile(c.lock, "plugin \"codec-x\" {\n  version = \n}\n"); err != nil {
		t.Fatal(err)
	}
	r := c.plugin("list")
	expect(t, r, exitError, c.lock+":2:", "fix or delete the lock file")
}
