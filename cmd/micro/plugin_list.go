package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/microhost/micro/host/plugins"
)

func listSubcommand() *subcommand {
	return &subcommand{
		name:    "list",
		summary: "list the locked plugins and whether their installed binaries match the lock",
		detail: `INSTALLED is ok when the binary's SHA-256 matches the lock, missing when there
is no binary, and MODIFIED when the binary differs from what was installed.`,
		run: runList,
	}
}

func runList(a *app, _ context.Context, o *pluginOptions, args []string) error {
	if len(args) != 0 {
		return usageErrorf("plugin list takes no arguments, got %q", args)
	}
	lock, err := o.readLock()
	if err != nil {
		return err
	}
	if len(lock.Plugins) == 0 {
		fmt.Fprintf(a.stdout, "no plugins in %s; install one with `micro plugin install <source>`\n", o.lock)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tSHA256\tINSTALLED\tSOURCE")
	for _, p := range lock.Plugins {
		st := o.check(p)
		installed := map[checkState]string{stateOK: "ok", stateMissing: "missing", stateMismatch: "MODIFIED", stateUnreadable: "unreadable"}[st.state]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Version, shortSum(p.SHA256), installed, shownSource(p.Source))
	}
	return tw.Flush()
}

// checkState is what hashing an installed binary found.
type checkState int

const (
	stateOK checkState = iota
	stateMissing
	stateMismatch
	stateUnreadable
)

// checked is one locked plugin's binary, hashed.
type checked struct {
	state checkState
	path  string
	sum   string // the binary's SHA-256 (when it could be read)
	err   error  // why it could not be read
}

// check hashes a locked plugin's installed binary against the lock.
func (o *pluginOptions) check(p *plugins.LockedPlugin) checked {
	path := o.binaryPath(p)
	sum, err := plugins.FileSHA256(path)
	switch {
	case errNotExist(err):
		return checked{state: stateMissing, path: path, err: err}
	case err != nil:
		return checked{state: stateUnreadable, path: path, err: err}
	case sum != p.SHA256:
		return checked{state: stateMismatch, path: path, sum: sum}
	}
	return checked{state: stateOK, path: path, sum: sum}
}
