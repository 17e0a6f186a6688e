package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/host/plugins"
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
	fmt.Fprintln(w, "  micro config validate [flags] [file]   check a config (default ./micro.hcl), the key and certificate files it names and its plugins against the lock file; every problem with file:line:col")
	fmt.Fprintln(w, "  micro config default                  print the embedded default config")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags of validate:")
	fmt.Fprintln(w, "  --var NAME=VALUE  set a config variable, as micro run --var does (repeatable)")
	fmt.Fprintln(w, "  --lock FILE       the plugin lock file the plugin blocks are checked against (default: micro.lock.hcl beside the config)")
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
	lock := fs.String("lock", "", "the plugin lock `FILE`")
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
	if err := configExists(file); err != nil {
		return err
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
	if err := checkLocked(cfg, file, *lock); err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(a.stderr, config.FormatDiagnostic(w))
	}
	fmt.Fprintf(a.stdout, "%s is valid: %d services, registry %s, broker %s, transport %s, %d plugins\n",
		file, len(cfg.Services), cfg.Registry.Name, cfg.Broker.Name, cfg.Transport.Name, len(cfg.Plugins))
	return nil
}

// checkLocked checks every plugin block against the lock file, as micro run does
// before it starts anything: the plugin must be installed at the version asked.
func checkLocked(cfg *config.Config, file, lockPath string) error {
	if len(cfg.Plugins) == 0 {
		return nil
	}
	if lockPath == "" {
		lockPath = filepath.Join(filepath.Dir(file), plugins.LockFileName)
	}
	lock, err := plugins.ReadLock(lockPath)
	if err != nil {
		return fmt.Errorf("%w\n(fix or delete the lock file %s)", err, lockPath)
	}
	var diags hcl.Diagnostics
	for _, p := range cfg.Plugins {
		source := p.Source
		if source == "" {
			source = "<source>"
		}
		switch entry := lock.Get(p.ID); {
		case entry == nil:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Plugin %s is not installed", p.ID),
				Detail:   fmt.Sprintf("%s has no entry for it; expected it installed: run `micro plugin install %s`", lockPath, source),
				Subject:  p.Range.Ptr(),
			})
		case p.Version != "" && p.Version != entry.Version:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Plugin %s version mismatch", p.ID),
				Detail:   fmt.Sprintf("the config asks for version %s but %s has %s; expected the same version: run `micro plugin install %s` or change the version", p.Version, lockPath, entry.Version, source),
				Subject:  p.VersionRange.Ptr(),
			})
		}
	}
	if len(diags) > 0 {
		return &config.Error{Diagnostics: diags}
	}
	return nil
}
