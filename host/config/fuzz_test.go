package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzParse checks that Parse never panics, and that it returns either a Config
// that marshals to JSON or an *Error of positioned error diagnostics. The seed
// corpus (every testdata file and the default) runs under plain go test.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.hcl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add(defaultHCL)
	f.Add([]byte(""))
	f.Add([]byte(`plugin "registry-x" { version = "1" config { a "b" "c" { d = [{ e = null }] } a "b" {} } }`))
	f.Add([]byte(`service "s" { metadata = { for k, v in { a = "b" } : k => v } args = [for s in ["x"] : upper(s)] }`))
	f.Add([]byte(`variable "v" { default = { a = [1, 2] } }` + "\n" + `service "s" { version = var.v.a[0] }`))
	f.Add([]byte(`transport "http" { max_body = "1e400MiB" pool { max_open = 1e400 } }`))

	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse(src, "fuzz.hcl", WithEnv(lookupTestEnv))
		if err != nil {
			if cfg != nil {
				t.Fatal("Parse returned both a Config and an error")
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if len(cerr.Diagnostics) == 0 {
				t.Fatal("an *Error without diagnostics")
			}
			for _, d := range cerr.Diagnostics {
				if d.Severity != hcl.DiagError {
					t.Fatalf("a non-error diagnostic in *Error: %s", FormatDiagnostic(d))
				}
			}
			_ = err.Error()
			return
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a Config nor an error")
		}
		if _, err := json.Marshal(cfg); err != nil {
			t.Fatalf("Config does not marshal: %v", err)
		}
		if len(cfg.Codecs) == 0 || cfg.Registry.Name == "" || cfg.Broker.Name == "" || cfg.Transport.Name == "" {
			t.Fatalf("a component is missing: %+v", cfg)
		}
		for _, p := range cfg.Plugins {
			if !json.Valid(p.Config) {
				t.Fatalf("plugin %s config is not JSON: %s", p.ID, p.Config)
			}
		}
	})
}
