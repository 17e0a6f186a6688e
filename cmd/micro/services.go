package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host"
	"github.com/microhost/micro/host/config"
	"github.com/microhost/micro/sdk/auth"
	"github.com/microhost/micro/sdk/auth/tlsconfig"
	"github.com/microhost/micro/sdk/client"
	"github.com/microhost/micro/sdk/transport"
)

func servicesCommand() *command {
	return &command{
		name:    "services",
		summary: "list the services registered with the running host",
		run:     runServices,
		usage: func(a *app, w io.Writer) {
			fmt.Fprintln(w, "Usage:")
			fmt.Fprintln(w, "  micro services [--dir DIR]")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Lists what the registry of the host started by `micro run` in DIR (default .) holds.")
		},
	}
}

func callCommand() *command {
	return &command{
		name:    "call",
		summary: "call a service's endpoint with a JSON request",
		run:     runCall,
		usage: func(a *app, w io.Writer) {
			fmt.Fprintln(w, "Usage:")
			fmt.Fprintln(w, "  micro call [--dir DIR] [--timeout 5s] [--token JWT] [--cert FILE --key FILE] [--ca FILE]")
			fmt.Fprintln(w, "             <service> <Handler.Method> '<json>'")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Calls through the registry of the host started by `micro run` in DIR (default .)")
			fmt.Fprintln(w, "and prints the JSON answer; an error prints its envelope and exits 1.")
			fmt.Fprintln(w, "--token (default $MICRO_TOKEN) is sent as a bearer token. When DIR's micro.hcl")
			fmt.Fprintln(w, "has a security tls block, the call uses its certificate, key and CA unless")
			fmt.Fprintln(w, "--cert, --key and --ca name others.")
		},
	}
}

func runServices(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("micro services", flag.ContinueOnError)
	fs.Usage = func() { servicesCommand().usage(a, fs.Output()) }
	dir := fs.String("dir", ".", "the `DIR`ectory micro run was started in")
	rest, err := parseFlags(a, fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("services takes no arguments, got %q", rest)
	}
	remote, err := host.DialRunning(*dir)
	if err != nil {
		return err
	}
	defer remote.Close()
	list, err := remote.Registry.ListServices(ctx)
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVERSION\tNODES\tENDPOINTS")
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		full, err := remote.Registry.GetService(ctx, s.Name)
		if err != nil {
			continue
		}
		for _, v := range full {
			var nodes, eps []string
			for _, n := range v.Nodes {
				nodes = append(nodes, n.Address)
			}
			for _, e := range v.Endpoints {
				eps = append(eps, e.Name)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Version, strings.Join(nodes, ","), strings.Join(eps, ","))
		}
	}
	return tw.Flush()
}

func runCall(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("micro call", flag.ContinueOnError)
	// The command's own usage: flag defaults would print $MICRO_TOKEN.
	fs.Usage = func() { callCommand().usage(a, fs.Output()) }
	dir := fs.String("dir", ".", "the `DIR`ectory micro run was started in")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	token := fs.String("token", os.Getenv("MICRO_TOKEN"), "a bearer `JWT` to send (default $MICRO_TOKEN)")
	var files tlsconfig.Files
	fs.StringVar(&files.CertFile, "cert", "", "the client certificate `FILE` for mutual TLS")
	fs.StringVar(&files.KeyFile, "key", "", "the client certificate's private key `FILE`")
	fs.StringVar(&files.CAFile, "ca", "", "the CA bundle `FILE` services' certificates are checked against")
	rest, err := parseFlags(a, fs, args)
	if err != nil {
		return err
	}
	if len(rest) < 2 || len(rest) > 3 {
		return usageErrorf("call wants <service> <Handler.Method> ['<json>'], e.g. micro call helloworld Greeter.Hello '{\"name\":\"Alice\"}'")
	}
	body := json.RawMessage("{}")
	if len(rest) == 3 {
		var v any
		if err := json.Unmarshal([]byte(rest[2]), &v); err != nil {
			return usageErrorf("the request %q is not valid JSON (%v); quote it for the shell, e.g. '{\"name\":\"Alice\"}'", rest[2], err)
		}
		body = json.RawMessage(rest[2])
	}
	remote, err := host.DialRunning(*dir)
	if err != nil {
		return err
	}
	defer remote.Close()
	opts := []client.Option{client.Registry(remote.Registry), client.Timeout(*timeout)}
	cfg, err := dirConfig(*dir)
	if err != nil {
		return err
	}
	tr, closeTransport, err := callTransport(ctx, a, cfg, *dir, files)
	if err != nil {
		return err
	}
	defer closeTransport()
	if tr != nil {
		opts = append(opts, client.Transport(tr))
	}
	if *token != "" {
		opts = append(opts, client.WithMiddleware(auth.BearerToken(auth.StaticToken(*token))))
	}
	c := client.New(opts...)
	defer c.Close()
	var rsp json.RawMessage
	if err := c.Call(ctx, rest[0], rest[1], body, &rsp); err != nil {
		return err
	}
	var out bytes.Buffer
	if json.Indent(&out, rsp, "", "  ") != nil {
		out.Reset()
		out.Write(rsp)
	}
	fmt.Fprintln(a.stdout, out.String())
	return nil
}

// dirConfig reads the micro.hcl in dir, the one micro run was started with
// there; nil when there is none (micro run ran the embedded default).
func dirConfig(dir string) (*config.Config, error) {
	path := filepath.Join(dir, config.FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s for the services' transport and TLS: %w", path, err)
	}
	return cfg, nil
}

// callTransport is the transport micro call reaches the services over: the
// config's transport plugin (the services speak it), else the http transport
// with the flags' or the config's TLS, else nil for the client's plain HTTP.
// closeTransport releases it.
func callTransport(ctx context.Context, a *app, cfg *config.Config, dir string, files tlsconfig.Files) (tr transport.Transport, closeTransport func(), err error) {
	if cfg != nil && cfg.Transport.Plugin != "" {
		if files != (tlsconfig.Files{}) {
			return nil, nil, usageErrorf("--cert, --key and --ca set the http transport's TLS; transport %q takes its TLS from its plugin's config", cfg.Transport.Name)
		}
		log := hclog.New(&hclog.LoggerOptions{Name: "micro", Output: a.stderr, Level: hclog.Error})
		tr, stop, err := host.CallerTransport(ctx, cfg, dir, log)
		if err != nil {
			return nil, nil, fmt.Errorf("starting transport %q to call with: %w", cfg.Transport.Name, err)
		}
		return tr, stop, nil
	}
	tlsFiles, err := callTLS(cfg, files)
	if err != nil {
		return nil, nil, err
	}
	if tlsFiles == nil {
		return nil, func() {}, nil
	}
	certs, err := tlsconfig.New(*tlsFiles)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS for micro call: %w", err)
	}
	ht := transport.NewHTTP(transport.ClientTLS(certs.ClientConfig()))
	return ht, func() { ht.Close(); certs.Close() }, nil
}

// callTLS is the TLS micro call dials services with: the flags' files, else
// the security tls block of cfg (DIR's micro.hcl, if any), else none (plain
// HTTP).
func callTLS(cfg *config.Config, flags tlsconfig.Files) (*tlsconfig.Files, error) {
	if flags.CertFile != "" || flags.KeyFile != "" || flags.CAFile != "" {
		if (flags.CertFile == "") != (flags.KeyFile == "") {
			return nil, usageErrorf("--cert and --key go together")
		}
		return &flags, nil
	}
	if cfg == nil || cfg.Security == nil || cfg.Security.TLS == nil {
		return nil, nil
	}
	files := *cfg.Security.TLS
	// Server settings: a caller has no use for them, and need not be able to read client_ca_file.
	files.RequireClientCert, files.ClientCAFile = false, ""
	return &files, nil
}
