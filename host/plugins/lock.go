package plugins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/microhost/micro/sdk/plugin"
)

// LockFileName is the lock file kept beside micro.hcl.
const LockFileName = "micro.lock.hcl"

// Lock is micro.lock.hcl: which version of each plugin is installed, from where,
// and the SHA-256 its binary must have.
type Lock struct {
	Plugins []*LockedPlugin `hcl:"plugin,block"`
}

// LockedPlugin is one plugin entry, labelled "<kind>-<name>".
type LockedPlugin struct {
	ID      string `hcl:"id,label"`
	Version string `hcl:"version"`
	Source  string `hcl:"source,optional"`
	SHA256  string `hcl:"sha256"`
	// Path is the installed binary; empty means the plugin directory's
	// <id>/<version>/micro-<id>.
	Path string `hcl:"path,optional"`
}

// ReadLock reads a lock file; a missing file is an empty lock. Diagnostics carry
// file:line:col.
func ReadLock(path string) (*Lock, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Lock{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	var l Lock
	if diags := gohcl.DecodeBody(f.Body, nil, &l); diags.HasErrors() {
		return nil, diagError(diags)
	}
	if diags := checkEntries(f.Body); diags.HasErrors() {
		return nil, diagError(diags)
	}
	return &l, nil
}

var (
	// lockIDRE is a plugin id: <kind>-<name>, one path segment.
	lockIDRE = regexp.MustCompile(`^(` + strings.Join(plugin.Kinds, "|") + `)-[a-z0-9][a-z0-9_-]*$`)
	// lockVersionRE is a version that is one path segment.
	lockVersionRE = regexp.MustCompile(`^v?[0-9A-Za-z][0-9A-Za-z.+_-]*$`)
)

// checkEntries refuses a plugin locked twice, and ids and versions that are not
// one path segment each: an entry's binary is <dir>/<id>/<version>/micro-<id>,
// and commands delete that directory, so an entry must not reach another
// plugin's files.
func checkEntries(body hcl.Body) hcl.Diagnostics {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	const fix = "fix the entry, or remove it and run `micro plugin install <source>`"
	var diags hcl.Diagnostics
	seen := map[string]hcl.Range{}
	for _, b := range sb.Blocks {
		if b.Type != "plugin" || len(b.Labels) != 1 {
			continue
		}
		if prev, dup := seen[b.Labels[0]]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Plugin %q is locked twice", b.Labels[0]),
				Detail:   fmt.Sprintf("it is already locked at %s:%d:%d; keep one entry", prev.Filename, prev.Start.Line, prev.Start.Column),
				Subject:  b.LabelRanges[0].Ptr(),
			})
		}
		seen[b.Labels[0]] = b.LabelRanges[0]
		if id := b.Labels[0]; !lockIDRE.MatchString(id) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Invalid plugin id %q", id),
				Detail:   fmt.Sprintf("%q is not <kind>-<name> with a kind of %s and a name of lower-case letters, digits, '-' and '_'; %s", id, strings.Join(plugin.Kinds, ", "), fix),
				Subject:  b.LabelRanges[0].Ptr(),
			})
		}
		a := b.Body.Attributes["version"]
		if a == nil {
			continue
		}
		v, vd := a.Expr.Value(nil)
		if vd.HasErrors() || v.Type() != cty.String || v.IsNull() || !v.IsKnown() {
			continue // gohcl reported it
		}
		if version := v.AsString(); !lockVersionRE.MatchString(version) || strings.Contains(version, "..") {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Invalid version %q for plugin %q", version, b.Labels[0]),
				Detail:   fmt.Sprintf("expected a version of letters, digits, '.', '+', '_' and '-' such as \"1.2.0\"; %s", fix),
				Subject:  a.Expr.Range().Ptr(),
			})
		}
	}
	return diags
}

// Get returns the entry for id, or nil.
func (l *Lock) Get(id string) *LockedPlugin {
	for _, p := range l.Plugins {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Put adds or replaces the entry for p.ID.
func (l *Lock) Put(p *LockedPlugin) {
	for i, q := range l.Plugins {
		if q.ID == p.ID {
			l.Plugins[i] = p
			return
		}
	}
	l.Plugins = append(l.Plugins, p)
}

// Remove drops the entry for id and reports whether there was one.
func (l *Lock) Remove(id string) bool {
	for i, q := range l.Plugins {
		if q.ID == id {
			l.Plugins = append(l.Plugins[:i], l.Plugins[i+1:]...)
			return true
		}
	}
	return false
}

// Write stores the lock at path atomically, entries sorted by id.
func (l *Lock) Write(path string) error {
	sort.Slice(l.Plugins, func(i, j int) bool { return l.Plugins[i].ID < l.Plugins[j].ID })
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# Written by `micro plugin`; records each plugin's version and SHA-256.\n")}})
	for i, p := range l.Plugins {
		if i > 0 {
			body.AppendNewline()
		}
		b := body.AppendNewBlock("plugin", []string{p.ID}).Body()
		b.SetAttributeValue("version", cty.StringVal(p.Version))
		if p.Source != "" {
			b.SetAttributeValue("source", cty.StringVal(p.Source))
		}
		b.SetAttributeValue("sha256", cty.StringVal(p.SHA256))
		if p.Path != "" {
			b.SetAttributeValue("path", cty.StringVal(p.Path))
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".micro.lock.*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(f.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// lockWait is how long LockForUpdate waits for another process's update.
const lockWait = 30 * time.Second

// LockForUpdate takes an advisory lock (flock) on .<name>.lock beside the lock
// file at path, so that one process at a time reads, changes and writes it:
// take it before ReadLock and call unlock after Write. It waits for another
// process's update for up to 30 s, or until ctx is done. The kernel drops the
// lock when its process dies, so a crashed command never blocks the next one.
func LockForUpdate(ctx context.Context, path string) (unlock func(), err error) {
	name := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	start := time.Now()
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s with %s: %w", path, name, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("another process is changing %s (it holds the lock on %s); gave up after %s: run the command again once it has finished", path, name, time.Since(start).Round(100*time.Millisecond))
			}
			return nil, fmt.Errorf("waiting for the lock on %s: %w", name, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// diagError renders HCL diagnostics as one error, each with file:line:col.
func diagError(diags hcl.Diagnostics) error {
	var errs []error
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		pos := ""
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		errs = append(errs, errors.New(pos+msg))
	}
	return errors.Join(errs...)
}
