package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/microhost/micro/host/config"
)

func configCommand() *command {
	return &command{
		name:    "config",
		summary: "validate micro.hcl, or print the embedded default",
		run:     runConfig,
		usage:   func(_ *app, w io.Writer) { configUsage(w) },
	}
}

func configUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  micro config validate [--var NAME=VALUE] [file]   check a config (default ./micro.hcl) and the key and certificate files it names; every problem with file:line:col")
	fmt.Fprintln(w, "  micro config default                             print the embedded default config")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags of validate:")
	fmt.Fprintln(w, "  --var NAME=VALUE  set a config variable, as micro run --var does (repeatable)")
}

func runConfig(a *app, ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("config: missing command; one of: validate, default (see `micro config --help`)")
	}
	switch args[0] {
	case "validate":
		return configValidate(a, args[1:])
	case "default":
		fs := flag.NewFlagSet("micro config default", flag.ContinueOnError)
		fs.Usage = func() { configUsage(fs.Output()) }
		rest, err := parseFlags(a, fs, args[1:])
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageErrorf("config default takes no arguments, got %q", rest)
		}
		_, err = a.stdout.Write(config.DefaultSource())
		return err
	case "-h", "--help", "help":
		configUsage(a.stdout)
		return nil
	}
	return usageErrorf("config: unknown command %q; one of: validate, default (see `micro config --help`)", args[0])
}

// configValidate is `micro config validate [--var NAME=VALUE] [file]`.
func configValidate(a *app, args []string) error {
	fs := flag.NewFlagSet("micro config validate", flag.ContinueOnError)
	fs.Usage = func() { configUsage(fs.Output()) }
	vars := varFlags{}
	fs.Var(vars, "var", "set a config variable `NAME=VALUE`")
	rest, err := parseFlags(a, fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usageErrorf("config validate: one file at most, got %q", rest)
	}
	file := defaultConfigFile
	if len(rest) == 1 {
		file = rest[0]
	}
	cfg, err := config.Load(file, config.WithVars(vars))
	if err != nil {
		return err
	}
	if err := cfg.Security.Check(); err != nil { // the key and certificate files, as start-up loads them
		return err
	}
	if err := cfg.Gateway.Check(); err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(a.stderr, config.FormatDiagnostic(w))
	}
	fmt.Fprintf(a.stdout, "%s is valid: %d services, registry %s, broker %s, transport %s, %d plugins\n",
		file, len(cfg.Services), cfg.Registry.Name, cfg.Broker.Name, cfg.Transport.Name, len(cfg.Plugins))
	return nil
}
