package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

func removeSubcommand() *subcommand {
	return &subcommand{
		name:    "remove",
		args:    "<id>",
		summary: "delete an installed plugin version and its lock entry",
		detail:  `The id is <kind>-<name>, as ` + "`micro plugin list`" + ` shows it.`,
		run:     runRemove,
	}
}

func runRemove(a *app, _ context.Context, o *pluginOptions, args []string) error {
	if len(args) != 1 {
		return usageErrorf("plugin remove takes one plugin id (e.g. registry-consul), got %d arguments", len(args))
	}
	id := args[0]
	lock, err := o.readLock()
	if err != nil {
		return err
	}
	p := lock.Get(id)
	if p == nil {
		return fmt.Errorf("plugin %s is not in %s (%s); nothing removed", id, o.lock, lockedIDs(lock))
	}
	versionDir := filepath.Dir(o.binaryPath(p))
	note := ""
	switch {
	case !insideDir(o.dir, versionDir):
		// A lock entry with its own path outside the plugin directory: that
		// file is not ours to delete.
		note = fmt.Sprintf("; left %s in place (it is outside the plugin directory %s)", o.binaryPath(p), o.dir)
	default:
		if _, err := os.Stat(versionDir); errNotExist(err) {
			note = fmt.Sprintf("; %s was already gone", versionDir)
		} else if err := os.RemoveAll(versionDir); err != nil {
			return fmt.Errorf("removing %s: %w; the lock entry is kept: fix the permissions and run `micro plugin remove %s` again", versionDir, err, id)
		} else {
			note = fmt.Sprintf(" (deleted %s)", versionDir)
		}
		// Drop <dir>/<id> when this was its last version; a non-empty one stays.
		if parent := filepath.Dir(versionDir); insideDir(o.dir, parent) {
			_ = os.Remove(parent)
		}
	}
	lock.Remove(id)
	if err := lock.Write(o.lock); err != nil {
		return fmt.Errorf("%w; the binary is removed but the lock still lists %s: make %s writable and run `micro plugin remove %s` again", err, id, o.lock, id)
	}
	fmt.Fprintf(a.stdout, "removed %s %s%s\n", p.ID, p.Version, note)
	return nil
}
