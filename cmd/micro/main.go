// Command micro is the Microhost CLI: it runs a system from micro.hcl (or the
// embedded default), validates configs, and installs and verifies plugins.
//
// Usage:
//
//	micro <command> [arguments]
//
// Run `micro help` for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line was wrong
)

// run is the CLI's entry point: it runs one command line and returns the exit
// code. Tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).run(ctx, args)
}

// app is one invocation of the CLI: where output goes and the knobs tests turn.
type app struct {
	stdout, stderr io.Writer
	// goEnv is added to the environment of the go command that builds Go module
	// sources (tests point GOPROXY at a local proxy with it).
	goEnv []string
}

func newApp(stdout, stderr io.Writer) *app { return &app{stdout: stdout, stderr: stderr} }

// command is one top-level command, e.g. `micro plugin`.
type command struct {
	name    string
	summary string
	// run gets the arguments after the command name.
	run func(a *app, ctx context.Context, args []string) error
	// usage prints the command's help (its subcommands and flags).
	usage func(a *app, w io.Writer)
}

// commands lists the top-level commands in the order help shows them.
func commands() []*command {
	return []*command{
		runCommand(),
		servicesCommand(),
		callCommand(),
		configCommand(),
		pluginCommand(),
	}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	var err error
	switch name {
	case "help", "-h", "-help", "--help":
		err = a.help(rest)
	default:
		c := findCommand(name)
		if c == nil {
			err = usageErrorf("unknown command %q; the commands are: %s (see `micro help`)", name, strings.Join(commandNames(), ", "))
			break
		}
		err = c.run(a, ctx, rest)
	}
	return a.exit(err)
}

// exit prints err (if any) and turns it into an exit code.
func (a *app) exit(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(a.stderr, "micro: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

// help prints usage: of everything, or of the command named.
func (a *app) help(args []string) error {
	if len(args) == 0 {
		a.usage(a.stdout)
		return nil
	}
	c := findCommand(args[0])
	if c == nil {
		return usageErrorf("no help for %q: it is not a command; the commands are: %s", args[0], strings.Join(commandNames(), ", "))
	}
	if len(args) > 1 {
		// `micro help plugin install` is `micro plugin install --help`.
		return c.run(a, context.Background(), append(args[1:], "--help"))
	}
	c.usage(a, a.stdout)
	return nil
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintln(w, "micro is the Microhost command line.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  micro <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "help", "show help for a command")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `micro help <command>` for more about a command.")
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return append(names, "help")
}

// usageError is a wrong command line; it exits with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseFlags parses args with fs, allowing flags after positional arguments
// (`micro plugin install ./bin --dir x`), and returns the positional ones.
// -h/--help returns flag.ErrHelp after printing the flag set's usage to stdout.
func parseFlags(a *app, fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(a.stdout)
				fs.Usage()
				return nil, flag.ErrHelp
			}
			return nil, usageErrorf("%s: %v (see `%s --help`)", fs.Name(), err, fs.Name())
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil // everything after -- is positional
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
