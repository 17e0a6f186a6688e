package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/microhost/micro/host/plugins"
)

func verifySubcommand() *subcommand {
	return &subcommand{
		name:    "verify",
		args:    "[id...]",
		summary: "check installed plugin binaries against the SHA-256 in the lock file",
		detail: `With no ids every locked plugin is checked. The exit code is 1 when any
plugin is missing or does not match.`,
		run: runVerify,
	}
}

func runVerify(a *app, _ context.Context, o *pluginOptions, ids []string) error {
	lock, err := o.readLock()
	if err != nil {
		return err
	}
	var todo []*plugins.LockedPlugin
	if len(ids) == 0 {
		todo = lock.Plugins
	}
	for _, id := range ids {
		p := lock.Get(id)
		if p == nil {
			return fmt.Errorf("plugin %s is not in %s (%s); install it with `micro plugin install <source>`", id, o.lock, lockedIDs(lock))
		}
		todo = append(todo, p)
	}
	if len(todo) == 0 {
		fmt.Fprintf(a.stdout, "no plugins in %s; nothing to verify\n", o.lock)
		return nil
	}
	var bad []string
	for _, p := range todo {
		c := o.check(p)
		switch c.state {
		case stateOK:
			fmt.Fprintf(a.stdout, "ok        %s %s\n", p.ID, p.Version)
			continue
		case stateMissing:
			fmt.Fprintf(a.stdout, "missing   %s %s: %s does not exist\n", p.ID, p.Version, c.path)
		case stateMismatch:
			fmt.Fprintf(a.stdout, "mismatch  %s %s: %s has sha256 %s, %s records %s\n", p.ID, p.Version, c.path, c.sum, o.lock, p.SHA256)
		case stateUnreadable:
			fmt.Fprintf(a.stdout, "error     %s %s: %v\n", p.ID, p.Version, c.err)
		}
		bad = append(bad, fmt.Sprintf("%s: reinstall it with `%s`", p.ID, reinstallCommand(p)))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d plugins failed verification:\n  %s", len(bad), len(todo), strings.Join(bad, "\n  "))
}

// reinstallCommand is the command that installs p again from its source.
func reinstallCommand(p *plugins.LockedPlugin) string {
	if p.Source == "" {
		return "micro plugin install <source>"
	}
	return "micro plugin install " + shownSource(p.Source)
}

// lockedIDs lists the lock's plugin ids for messages.
func lockedIDs(l *plugins.Lock) string {
	if len(l.Plugins) == 0 {
		return "it locks no plugins"
	}
	var ids []string
	for _, p := range l.Plugins {
		ids = append(ids, p.ID)
	}
	return "it locks " + strings.Join(ids, ", ")
}
