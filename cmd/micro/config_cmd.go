package main

import (
	"context"
	"fmt"
	"io"

	"github.com/microhost/micro/host/config"
)

func configCommand() *command {
	return &command{
		name:    "config",
		summary: "validate micro.hcl, or print the embedded default",
		run:     runConfig,
		usage: func(a *app, w io.Writer) {
			fmt.Fprintln(w, "Usage:")
			fmt.Fprintln(w, "  micro config validate [file]   check a config (default ./micro.hcl) and the key and certificate files it names; every problem with file:line:col")
			fmt.Fprintln(w, "  micro config default           print the embedded default config")
		},
	}
}

func runConfig(a *app, ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("config: missing command; one of: validate, default")
	}
	switch args[0] {
	case "validate":
		file := defaultConfigFile
		if len(args) > 2 {
			return usageErrorf("config validate: one file at most")
		}
		if len(args) == 2 {
			file = args[1]
		}
		cfg, err := config.Load(file)
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
			fmt.Fprintf(a.stderr, "warning: %s\n", w.Error())
		}
		fmt.Fprintf(a.stdout, "%s is valid: %d services, registry %s, broker %s, transport %s, %d plugins\n",
			file, len(cfg.Services), cfg.Registry.Name, cfg.Broker.Name, cfg.Transport.Name, len(cfg.Plugins))
		return nil
	case "default":
		_, err := a.stdout.Write(config.DefaultSource())
		return err
	case "-h", "--help", "help":
		configCommand().usage(a, a.stdout)
		return nil
	}
	return usageErrorf("config: unknown command %q; one of: validate, default", args[0])
}
