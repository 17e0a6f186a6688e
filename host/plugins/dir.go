package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// EnvPluginDir names the environment variable that moves the default plugin
// directory.
const EnvPluginDir = "MICRO_PLUGIN_DIR"

// DefaultDir is where plugins are installed: ~/.micro/plugins, or
// $MICRO_PLUGIN_DIR when set.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvPluginDir); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the plugin directory: %w; set %s", err, EnvPluginDir)
	}
	return filepath.Join(home, ".micro", "plugins"), nil
}

// DefaultDirSource says where DefaultDir's answer comes from, for messages
// about a plugin that is not where it was looked for.
func DefaultDirSource() string {
	if os.Getenv(EnvPluginDir) != "" {
		return "from $" + EnvPluginDir
	}
	return "the default, as $" + EnvPluginDir + " is not set"
}

// BinaryName is the file name of a plugin's binary: micro-<kind>-<name>.
func BinaryName(id string) string { return "micro-" + id }

// InstalledPath is where an installed plugin's binary lives:
// <dir>/<kind>-<name>/<version>/micro-<kind>-<name>.
func InstalledPath(dir, id, version string) string {
	return filepath.Join(dir, id, version, BinaryName(id))
}

// SplitID splits "<kind>-<name>" into its kind and name.
func SplitID(id string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(id, "-")
	if !ok || kind == "" || name == "" {
		return "", "", fmt.Errorf("plugin id %q is not <kind>-<name> (e.g. registry-consul)", id)
	}
	return kind, name, nil
}

// FileSHA256 returns the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CopyFile copies src to dst with mode through a temporary file and a rename,
// returning the SHA-256 of what was written.
func CopyFile(src, dst string, mode os.FileMode) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".copy-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
