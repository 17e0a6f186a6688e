package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/microhost/micro/host/plugins"
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

func runRemove(a *app, ctx context.Context, o *pluginOptions, args []string) error {
	if len(args) != 1 {
		return usageErrorf("plugin remove takes one plugin id (e.g. registry-consul), got %d arguments", len(args))
	}
	id := args[0]
	// An id the lock does not list needs no turn on the lock file.
	if lock, err := o.readLock(); err != nil {
		return err
	} else if lock.Get(id) == nil {
		return notLocked(o, lock, id)
	}
	unlock, err := plugins.LockForUpdate(ctx, o.lock)
	if err != nil {
		return fmt.Errorf("%w; nothing removed", err)
	}
	defer unlock()
	lock, err := o.readLock()
	if err != nil {
		return err
	}
	p := lock.Get(id)
	if p == nil { // removed meanwhile
		return notLocked(o, lock, id)
	}
	note, err := o.removeInstalled(lock, p)
	if err != nil {
		return err
	}
	lock.Remove(id)
	if err := lock.Write(o.lock); err != nil {
		return fmt.Errorf("%w; the binary is removed but the lock still lists %s: make %s writable and run `micro plugin remove %s` again", err, id, o.lock, id)
	}
	fmt.Fprintf(a.stdout, "removed %s %s%s\n", p.ID, p.Version, note)
	return nil
}

// notLocked is remove's answer for an id lock does not list.
func notLocked(o *pluginOptions, lock *plugins.Lock, id string) error {
	return fmt.Errorf("plugin %s is not in %s (%s); nothing removed", id, o.lock, lockedIDs(lock))
}

// removeInstalled deletes p's binary from its own place in the plugin
// directory, <dir>/<id>/<version>/micro-<id>, then the directories above it it
// leaves empty. Nothing else is deleted: a binary the entry's path puts
// anywhere else, one another entry names, and one reached through a symbolic
// link are left where they are. It returns the note for the message.
func (o *pluginOptions) removeInstalled(lock *plugins.Lock, p *plugins.LockedPlugin) (string, error) {
	own := plugins.InstalledPath(o.dir, p.ID, p.Version)
	if p.Path != "" && filepath.Clean(p.Path) != own {
		if !insideDir(o.dir, filepath.Clean(p.Path)) {
			return fmt.Sprintf("; left %s in place (it is outside the plugin directory %s)", p.Path, o.dir), nil
		}
		return fmt.Sprintf("; left %s in place: remove deletes only %s, where `micro plugin install` puts %s %s", p.Path, own, p.ID, p.Version), nil
	}
	if !insideDir(o.dir, own) { // ReadLock refuses such ids and versions
		return fmt.Sprintf("; left %s in place (it is outside the plugin directory %s)", own, o.dir), nil
	}
	for _, q := range lock.Plugins {
		if q.ID != p.ID && q.Path != "" && filepath.Clean(q.Path) == own {
			return fmt.Sprintf("; left %s in place (the lock's %s entry names it too)", own, q.ID), nil
		}
	}
	versionDir := filepath.Dir(own)
	if _, err := os.Lstat(own); errNotExist(err) {
		return fmt.Sprintf("; %s was already gone", own), nil
	}
	// <dir>/<id>/<version> must be itself, not a symbolic link elsewhere.
	realDir, err := filepath.EvalSymlinks(o.dir)
	if err != nil {
		return "", fmt.Errorf("removing %s: %w; the lock entry is kept", own, err)
	}
	realVersionDir, err := filepath.EvalSymlinks(versionDir)
	if err != nil {
		return "", fmt.Errorf("removing %s: %w; the lock entry is kept", own, err)
	}
	if realVersionDir != filepath.Join(realDir, p.ID, p.Version) {
		return fmt.Sprintf("; left %s in place (%s leads to %s through a symbolic link)", own, versionDir, realVersionDir), nil
	}
	if err := os.Remove(own); err != nil {
		return "", fmt.Errorf("removing %s: %w; the lock entry is kept: fix the permissions and run `micro plugin remove %s` again", own, err, p.ID)
	}
	// Drop <version>, then <id>, when nothing else is in them.
	if os.Remove(versionDir) != nil {
		return fmt.Sprintf(" (deleted %s; kept %s, which holds other files)", own, versionDir), nil
	}
	_ = os.Remove(filepath.Dir(versionDir))
	return fmt.Sprintf(" (deleted %s)", versionDir), nil
}
