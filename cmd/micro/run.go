package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host"
	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/sdk/server"
)

// defaultConfigFile is what `micro run` looks for in the working directory.
const defaultConfigFile = "micro.hcl"

func runCommand() *command {
	return &command{
		name:    "run",
		summary: "run the services micro.hcl declares (or the embedded default)",
		run:     runRun,
		usage: func(a *app, w io.Writer) {
			fmt.Fprintln(w, "Usage:")
			fmt.Fprintln(w, "  micro run [flags] [file]")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Runs the services, registry, broker, transport, codecs and plugins the config")
			fmt.Fprintln(w, "declares, until Ctrl-C or SIGTERM. With no file and no ./micro.hcl it runs the")
			fmt.Fprintln(w, "embedded default: memory registry and broker, http transport, json + msgpack,")
			fmt.Fprintln(w, "and the helloworld service.")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Flags:")
			fmt.Fprintln(w, "  --var NAME=VALUE  set a config variable (repeatable)")
			fmt.Fprintln(w, "  --lock FILE       the plugin lock file (default: micro.lock.hcl beside the config)")
			fmt.Fprintln(w, "  --dir DIR         the plugin directory (default $MICRO_PLUGIN_DIR or ~/.micro/plugins)")
			fmt.Fprintln(w, "  --watch           rebuild and restart Go services (package = ...) whose sources change")
			fmt.Fprintln(w, "  --gateway ADDR    the gateway's listen address, overriding the config (127.0.0.1:0: any free port)")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "With a config file, SIGHUP or a change to the file reloads it: the new config is")
			fmt.Fprintln(w, "validated and its plugins started before the running system stops; a config that")
			fmt.Fprintln(w, "fails leaves the running system untouched.")
		},
	}
}

// varFlags collects --var NAME=VALUE.
type varFlags map[string]string

func (v varFlags) String() string { return "" }

func (v varFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("--var wants NAME=VALUE, got %q", s)
	}
	v[name] = value
	return nil
}

func runRun(a *app, ctx context.Context, args []string) error {
	started := time.Now()
	fset := flag.NewFlagSet("micro run", flag.ContinueOnError)
	fset.Usage = func() { runCommand().usage(a, fset.Output()) }
	vars := varFlags{}
	fset.Var(vars, "var", "set a config variable `NAME=VALUE`")
	lock := fset.String("lock", "", "the plugin lock `FILE`")
	dir := fset.String("dir", "", "the plugin `DIR`ectory")
	watch := fset.Bool("watch", false, "rebuild and restart Go services whose sources change")
	gatewayAddr := fset.String("gateway", "", "the gateway's listen `ADDR`")
	rest, err := parseFlags(a, fset, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usageErrorf("run: one config file at most, got %q", rest)
	}
	file := ""
	if len(rest) == 1 {
		file = rest[0]
		if err := configExists(file); err != nil {
			return err
		}
	} else if _, err := os.Stat(defaultConfigFile); err == nil {
		file = defaultConfigFile
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	examples := map[string]string{}
	opts := []host.Option{host.OnReady(func(h *host.Host) { a.printReady(h, file, examples, time.Since(started)) })}
	if *lock != "" {
		opts = append(opts, host.WithLockFile(*lock))
	}
	if *dir != "" {
		opts = append(opts, host.WithPluginDir(*dir))
	}
	if *watch {
		opts = append(opts, host.Watch(true))
	}
	if *gatewayAddr != "" {
		opts = append(opts, host.GatewayListen(*gatewayAddr))
	}
	// helloworld is micro's own demo service: the embedded default runs it, and
	// a config may embed it too.
	opts = append(opts, host.WithDefaultHandler("helloworld", new(greeter.Greeter), server.Idempotent("Hello")))
	examples["Greeter.Hello"] = `{"name":"Alice"}`
	if file == "" {
		fmt.Fprintln(a.stdout, "no micro.hcl here: running the embedded default (write one with `micro config default > micro.hcl`)")
		return host.Run(ctx, opts...)
	}
	// Validate first, so a bad file is reported before anything starts.
	if _, err := config.Load(file, config.WithVars(vars)); err != nil {
		return err
	}
	opts = append(opts, host.WithConfigFile(file, config.WithVars(vars)))
	return host.RunReloading(ctx, nil, opts...)
}

// configExists explains a config file that is not there.
func configExists(file string) error {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("config file %s does not exist: give the path of one, or write one with `micro config default > micro.hcl`", file)
	}
	return nil
}

// examples holds a request body per endpoint worth showing; others get {}.
func (a *app) printReady(h *host.Host, file string, examples map[string]string, took time.Duration) {
	from := file
	if from == "" {
		from = "the embedded default"
	}
	fmt.Fprintf(a.stdout, "ready in %s (%s)\n", took.Round(time.Millisecond), from)
	for _, sc := range h.Config().Services {
		svcs, err := h.Registry().GetService(context.Background(), sc.Name)
		if err != nil || len(svcs) == 0 || len(svcs[0].Nodes) == 0 {
			continue
		}
		addr := svcs[0].Nodes[0].Address
		if t := h.Config().Transport; t.Plugin != "" {
			// Not plain HTTP: curl cannot call it, micro call can.
			fmt.Fprintf(a.stdout, "  service %-12s %s (transport %s)\n", sc.Name, addr, t.Name)
			continue
		}
		fmt.Fprintf(a.stdout, "  service %-12s http://%s\n", sc.Name, addr)
		for _, ep := range svcs[0].Endpoints {
			if ep.Metadata["kind"] != "unary" {
				continue
			}
			body := examples[ep.Name]
			if body == "" {
				body = "{}"
			}
			fmt.Fprintf(a.stdout, "    curl -H 'Content-Type: application/json' -d '%s' http://%s/%s\n", body, addr, ep.Name)
		}
	}
	if g := h.Gateway(); g != nil {
		url := h.GatewayURL()
		fmt.Fprintf(a.stdout, "  gateway %-12s %s   (API docs %s/api/docs)\n", "", url, url)
		for _, r := range g.Config().Routes {
			fmt.Fprintf(a.stdout, "    %-28s -> %s %s\n", r.Pattern, r.Service, r.Endpoint)
		}
	}
	if len(h.Config().Services) > 0 {
		fmt.Fprintf(a.stdout, "  or: micro call %s <Handler.Method> '<json>'   micro services\n", h.Config().Services[0].Name)
	}
	fmt.Fprintln(a.stdout, "press Ctrl-C to stop")
}
