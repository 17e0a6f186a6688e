package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/microhost/micro/host/plugins"
)

// subcommand is one `micro plugin <name>` command.
type subcommand struct {
	name    string
	args    string // the positional arguments, as usage shows them
	summary string
	detail  string // extra help text after the flags
	run     func(a *app, ctx context.Context, o *pluginOptions, args []string) error
}

func pluginSubcommands() []*subcommand {
	return []*subcommand{
		installSubcommand(),
		listSubcommand(),
		verifySubcommand(),
		removeSubcommand(),
	}
}

func pluginCommand() *command {
	return &command{
		name:    "plugin",
		summary: "install, list, verify and remove plugins",
		run:     runPlugin,
		usage:   pluginUsage,
	}
}

func pluginUsage(_ *app, w io.Writer) {
	fmt.Fprintln(w, "Manage out-of-process plugins (registries, brokers, transports, codecs).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  micro plugin <command> [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, s := range pluginSubcommands() {
		fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command takes:")
	fmt.Fprintf(w, "  --lock FILE  the lock file (default ./%s)\n", plugins.LockFileName)
	fmt.Fprintln(w, "  --dir DIR    the plugin directory (default $MICRO_PLUGIN_DIR or ~/.micro/plugins)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `micro plugin <command> --help` for more about a command.")
}

func runPlugin(a *app, ctx context.Context, args []string) error {
	if len(args) == 0 {
		pluginUsage(a, a.stderr)
		return usageErrorf("plugin: missing command; one of: %s", strings.Join(pluginSubcommandNames(), ", "))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		pluginUsage(a, a.stdout)
		return nil
	}
	var sub *subcommand
	for _, s := range pluginSubcommands() {
		if s.name == args[0] {
			sub = s
		}
	}
	if sub == nil {
		return usageErrorf("plugin: unknown command %q; the plugin commands are: %s (see `micro plugin --help`)", args[0], strings.Join(pluginSubcommandNames(), ", "))
	}
	o := &pluginOptions{}
	fs := flag.NewFlagSet("micro plugin "+sub.name, flag.ContinueOnError)
	fs.StringVar(&o.lock, "lock", plugins.LockFileName, "the lock `FILE` recording each plugin's version and SHA-256")
	fs.StringVar(&o.dir, "dir", "", "the plugin directory `DIR` (default $MICRO_PLUGIN_DIR or ~/.micro/plugins)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: micro plugin %s [flags] %s\n\n%s.\n\nFlags:\n", sub.name, sub.args, upperFirst(sub.summary))
		fs.PrintDefaults()
		if sub.detail != "" {
			fmt.Fprintf(w, "\n%s\n", sub.detail)
		}
	}
	pos, err := parseFlags(a, fs, args[1:])
	if err != nil {
		return err
	}
	if o.dir == "" {
		if o.dir, err = plugins.DefaultDir(); err != nil {
			return err
		}
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return fmt.Errorf("plugin directory %s: %w", o.dir, err)
	}
	return sub.run(a, ctx, o, pos)
}

func pluginSubcommandNames() []string {
	var names []string
	for _, s := range pluginSubcommands() {
		names = append(names, s.name)
	}
	return names
}

// pluginOptions are the flags every plugin command takes.
type pluginOptions struct {
	lock string // micro.lock.hcl
	dir  string // the plugin directory, absolute
}

// readLock reads the lock file named by --lock.
func (o *pluginOptions) readLock() (*plugins.Lock, error) {
	l, err := plugins.ReadLock(o.lock)
	if err != nil {
		return nil, fmt.Errorf("%w\n(fix or delete the lock file %s)", err, o.lock)
	}
	return l, nil
}

// binaryPath is where a locked plugin's binary is: its recorded path, or its
// place in the plugin directory.
func (o *pluginOptions) binaryPath(p *plugins.LockedPlugin) string {
	if p.Path != "" {
		return p.Path
	}
	return plugins.InstalledPath(o.dir, p.ID, p.Version)
}

// insideDir reports whether path lies inside dir (both absolute, cleaned).
func insideDir(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// shownSource is a recorded source as messages show it: an archive URL
// without credentials, which a lock file written by hand may hold.
func shownSource(s string) string {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return shownURL(s)
	}
	return s
}

// shortSum abbreviates a hex SHA-256 for tables and messages.
func shortSum(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
