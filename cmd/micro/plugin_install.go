package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/plugins"
	"github.com/microhost/micro/sdk/plugin"
	pluginv1 "github.com/microhost/micro/sdk/plugin/proto/micro/plugin/v1"
)

func installSubcommand() *subcommand {
	return &subcommand{
		name:    "install",
		args:    "<source>",
		summary: "install a plugin and record its version and SHA-256 in the lock file",
		detail: `A source is one of:
  ./path/to/micro-<kind>-<name>               a plugin binary on disk
  https://host/dir/<name>.tar.gz (or .zip)    an archive, checked against https://host/dir/SHA256SUMS
  example.com/module/cmd/plugin@v1.2.3        a Go module path@version (or @latest), built with ` + "`go install`" + `

The binary is started once to ask what it is (kind, name, version); it is then
copied to <dir>/<kind>-<name>/<version>/micro-<kind>-<name>.`,
		run: runInstall,
	}
}

func runInstall(a *app, ctx context.Context, o *pluginOptions, args []string) error {
	if len(args) != 1 {
		return usageErrorf("plugin install takes one source (a binary path, an archive URL or a Go module path@version), got %d arguments", len(args))
	}
	source := args[0]
	if _, err := o.readLock(); err != nil { // a broken lock file fails before any work
		return err
	}
	// The lock is written last; an install that could not record its plugin
	// would leave a binary the lock does not vouch for.
	if err := checkWritable(o.lock); err != nil {
		return fmt.Errorf("cannot install %s: the lock file %s cannot be written (%w): create its directory, or name another lock file with --lock", shownSource(source), o.lock, err)
	}
	tmp, err := os.MkdirTemp("", "micro-plugin-install-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	src, err := a.fetchSource(ctx, source, tmp)
	if err != nil {
		return err
	}
	p, bin, err := a.stageBinary(ctx, o, src, tmp)
	if err != nil {
		return err
	}
	// Another command may have changed the lock since it was read, or be
	// removing this plugin's files: read it again, and place the binary and
	// write the lock while holding it.
	unlock, err := plugins.LockForUpdate(ctx, o.lock)
	if err != nil {
		return fmt.Errorf("%w; %s %s is not installed", err, p.ID, p.Version)
	}
	defer unlock()
	lock, err := o.readLock()
	if err != nil {
		return fmt.Errorf("%w; %s %s is not installed", err, p.ID, p.Version)
	}
	if err := placeBinary(o, bin, p); err != nil {
		return err
	}
	lock.Put(p)
	if err := lock.Write(o.lock); err != nil {
		return fmt.Errorf("%w; the plugin is installed but not recorded: check that %s is writable and run the install again", err, o.lock)
	}
	note := ""
	if src.unrecorded != "" {
		note = fmt.Sprintf("; the URL's %s, which may hold credentials, were not recorded in %s: give them again to reinstall", src.unrecorded, o.lock)
	}
	fmt.Fprintf(a.stdout, "installed %s %s (sha256 %s…) from %s%s\n", p.ID, p.Version, shortSum(p.SHA256), p.Source, note)
	return nil
}

// checkWritable checks that a file can be created beside path, as writing the
// lock file atomically does.
func checkWritable(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".micro.lock.*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// sourceKind says which of the three kinds of source s is.
type sourceKind int

const (
	sourceLocal sourceKind = iota
	sourceArchive
	sourceGoModule
)

func classifySource(s string) (sourceKind, error) {
	if s == "" {
		return 0, usageErrorf("plugin install: the source is empty")
	}
	if lower := strings.ToLower(s); strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		return sourceArchive, nil // a URL's scheme is case-insensitive
	}
	if _, err := os.Stat(s); err == nil {
		return sourceLocal, nil
	}
	if strings.Contains(s, "://") {
		return 0, usageErrorf("plugin install: %s: only http:// and https:// archive URLs are supported", shownURL(s))
	}
	if strings.Contains(s, "@") && !strings.ContainsAny(s, `\`) && !strings.HasPrefix(s, ".") && !filepath.IsAbs(s) {
		return sourceGoModule, nil
	}
	return 0, fmt.Errorf("plugin install: %s is not a file; a source is a path to a plugin binary, an http(s) URL of a .tar.gz or .zip archive, or a Go module path@version", s)
}

// fetched is a source turned into a binary on disk.
type fetched struct {
	bin    string // the binary to install
	source string // the source to record in the lock file
	// wantID, when set, is the id the binary must describe itself as (an
	// archive's binary is named for the plugin it holds).
	wantID string
	// unrecorded names the parts of an archive URL left out of source, which
	// may hold credentials ("user name and password", "query string").
	unrecorded string
}

// fetchSource turns source into a binary on disk, downloading or building it
// under tmp when needed.
func (a *app) fetchSource(ctx context.Context, source, tmp string) (*fetched, error) {
	kind, err := classifySource(source)
	if err != nil {
		return nil, err
	}
	switch kind {
	case sourceArchive:
		return a.fetchArchive(ctx, source, tmp)
	case sourceGoModule:
		bin, err := a.buildGoModule(ctx, source, tmp)
		if err != nil {
			return nil, err
		}
		return &fetched{bin: bin, source: source}, nil
	}
	// A local path is recorded absolute, so `micro plugin install <source>`
	// works again from any directory.
	abs, err := filepath.Abs(source)
	if err != nil {
		return nil, fmt.Errorf("plugin install: %s: %w", source, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("plugin install: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("plugin install: %s is not a regular file; give the path of a plugin binary (micro-<kind>-<name>)", source)
	}
	return &fetched{bin: abs, source: abs}, nil
}

// stageBinary asks src's binary what it is and returns its lock entry and the
// staged binary to install. It works on an executable copy under tmp: a binary
// saved without its executable bit installs, and the file started to describe
// it is the one installed.
func (a *app) stageBinary(ctx context.Context, o *pluginOptions, src *fetched, tmp string) (*plugins.LockedPlugin, string, error) {
	source := src.source
	staged := filepath.Join(tmp, "staged")
	if err := os.Mkdir(staged, 0o700); err != nil {
		return nil, "", fmt.Errorf("plugin install: %w", err)
	}
	bin := filepath.Join(staged, filepath.Base(src.bin))
	sum, err := plugins.CopyFile(src.bin, bin, 0o700)
	if err != nil {
		return nil, "", fmt.Errorf("plugin install: reading %s: %w", src.bin, err)
	}
	info, err := a.describe(ctx, bin, sum)
	if err != nil {
		return nil, "", fmt.Errorf("cannot install %s: %w", source, err)
	}
	id, err := checkDescribed(info)
	if err != nil {
		return nil, "", fmt.Errorf("cannot install %s: %w", source, err)
	}
	if src.wantID != "" && src.wantID != id {
		return nil, "", fmt.Errorf("cannot install %s: its binary is named %s, but it describes itself as %s %s; the archive is mislabelled: ask its publisher", source, filepath.Base(bin), id, info.Version)
	}
	if dst := plugins.InstalledPath(o.dir, id, info.Version); !insideDir(o.dir, dst) {
		return nil, "", fmt.Errorf("cannot install %s: its id %s and version %q do not make a path inside %s", source, id, info.Version, o.dir)
	}
	return &plugins.LockedPlugin{ID: id, Version: info.Version, Source: source, SHA256: sum}, bin, nil
}

// placeBinary copies the staged binary bin of p into the plugin directory.
func placeBinary(o *pluginOptions, bin string, p *plugins.LockedPlugin) error {
	dst := plugins.InstalledPath(o.dir, p.ID, p.Version)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("cannot install %s: %w; check that the plugin directory %s is writable (or pick another with --dir)", p.Source, err, o.dir)
	}
	got, err := plugins.CopyFile(bin, dst, 0o755)
	if err != nil {
		return fmt.Errorf("cannot install %s: copying it to %s: %w", p.Source, dst, err)
	}
	if got != p.SHA256 {
		return fmt.Errorf("cannot install %s: %s changed while it was being installed (sha256 %s, then %s); install it again", p.Source, bin, p.SHA256, got)
	}
	return nil
}

var (
	// pluginNameRE is what a plugin's name must look like to become part of a
	// path and a file name.
	pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// pluginVersionRE keeps versions to what is safe as a directory name.
	pluginVersionRE = regexp.MustCompile(`^v?[0-9A-Za-z][0-9A-Za-z.+_-]*$`)
)

// checkDescribed checks what a plugin said about itself and returns its id.
func checkDescribed(info *pluginv1.DescribeResponse) (string, error) {
	if !slices.Contains(plugin.Kinds, info.Kind) {
		return "", fmt.Errorf("the plugin says its kind is %q, which is none of %s: it was built for another host", info.Kind, strings.Join(plugin.Kinds, ", "))
	}
	if !pluginNameRE.MatchString(info.Name) {
		return "", fmt.Errorf("the %s plugin's name %q is not lower-case letters, digits, '-' and '_': report it to the plugin's author", info.Kind, info.Name)
	}
	if !pluginVersionRE.MatchString(info.Version) || strings.Contains(info.Version, "..") {
		return "", fmt.Errorf("plugin %s-%s reports version %q, which is not a semantic version: report it to the plugin's author", info.Kind, info.Name, info.Version)
	}
	return info.Kind + "-" + info.Name, nil
}

// binaryIDRE matches a plugin binary's file name, micro-<kind>-<name>.
var binaryIDRE = regexp.MustCompile(`^micro-(` + strings.Join(plugin.Kinds, "|") + `)-([a-z0-9][a-z0-9_-]*)$`)

// idFromBinaryName returns the id and kind a binary's file name announces, or
// false when the name is not micro-<kind>-<name>.
func idFromBinaryName(path string) (id, kind string, ok bool) {
	m := binaryIDRE.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return "", "", false
	}
	return m[1] + "-" + m[2], m[1], true
}

// describe starts bin through the host's plugin Manager, exactly as the host
// would (checksum, handshake, protocol version), and returns its Describe answer.
//
// The Manager starts a plugin as a given kind and refuses one of another kind,
// so the kind is taken from the binary's name (micro-<kind>-<name>) when it has
// one; otherwise the first refusal names the real kind and one retry follows.
func (a *app) describe(ctx context.Context, bin, sum string) (*pluginv1.DescribeResponse, error) {
	m, err := plugins.NewManager(plugins.Options{
		// Only errors: a plugin that crashes at start shows its output here.
		Logger: hclog.New(&hclog.LoggerOptions{Name: "micro", Output: a.stderr, Level: hclog.Error}),
	})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	info, err := m.Describe(ctx, bin, sum)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, errors.New("the plugin started but did not describe itself")
	}
	return info, nil
}

// errNotExist reports whether err says a file is missing.
func errNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
