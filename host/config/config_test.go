package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata's .golden.json and .diag files from the current output")

// testEnv is the environment env() sees in the testdata files.
var testEnv = map[string]string{"CONSUL_TOKEN": "s3cret", "MICRO_ZONE": "eu-2", "EMPTY": "", "JWT_SECRET": "0123456789abcdef0123456789abcdef"}

func lookupTestEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

// fileOptions are the options a testdata file is parsed with besides WithEnv(lookupTestEnv).
var fileOptions = map[string][]Option{
	"good/vars.hcl": {WithVars(map[string]string{"zone": "us-2", "port": "9191"}), WithVars(map[string]string{"debug": "true", "region": "us"})},
	"bad/vars.hcl":  {WithVars(map[string]string{"port": "eighty", "nope": "1"})},
}

// parseTestdata parses testdata/<rel> under its base name, so positions in
// goldens read "full.hcl:3:5".
func parseTestdata(t testing.TB, rel string) (*Config, error) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]Option{WithEnv(lookupTestEnv)}, fileOptions[filepath.ToSlash(rel)]...)
	return Parse(src, filepath.Base(rel), opts...)
}

// marshalConfig is the golden form of a Config.
func marshalConfig(t testing.TB, cfg *Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// golden compares got with the file at path, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func testdataFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.hcl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/%s/*.hcl: %v", dir, err)
	}
	return files
}

// TestGood decodes each testdata/good/*.hcl and compares the Config, as JSON,
// with its .golden.json.
func TestGood(t *testing.T) {
	for _, file := range testdataFiles(t, "good") {
		name := strings.TrimSuffix(filepath.Base(file), ".hcl")
		t.Run(name, func(t *testing.T) {
			cfg, err := parseTestdata(t, filepath.Join("good", filepath.Base(file)))
			if err != nil {
				t.Fatalf("unexpected diagnostics:\n%v", err)
			}
			golden(t, strings.TrimSuffix(file, ".hcl")+".golden.json", marshalConfig(t, cfg))
		})
	}
}

// TestBad parses each testdata/bad/*.hcl and compares the diagnostics, one per
// line with positions, with its .diag; every file holds several problems, and
// all of them must be reported.
func TestBad(t *testing.T) {
	for _, file := range testdataFiles(t, "bad") {
		name := strings.TrimSuffix(filepath.Base(file), ".hcl")
		t.Run(name, func(t *testing.T) {
			cfg, err := parseTestdata(t, filepath.Join("bad", filepath.Base(file)))
			if err == nil {
				t.Fatalf("parsed without diagnostics: %+v", cfg)
			}
			if cfg != nil {
				t.Error("a Config returned with an error")
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error %T is not a *config.Error: %v", err, err)
			}
			if len(cerr.Diagnostics) < 2 {
				t.Errorf("only %d diagnostic(s): each bad file holds several problems", len(cerr.Diagnostics))
			}
			for _, d := range cerr.Diagnostics {
				if d.Subject == nil || d.Subject.Filename != filepath.Base(file) {
					t.Errorf("diagnostic without a position in the file: %s", FormatDiagnostic(d))
				}
				if d.Detail == "" {
					t.Errorf("diagnostic without a detail saying what was expected: %s", FormatDiagnostic(d))
				}
			}
			golden(t, strings.TrimSuffix(file, ".hcl")+".diag", []byte(err.Error()+"\n"))
		})
	}
}

// TestGoldensHaveSources catches goldens left behind by a renamed or removed file.
func TestGoldensHaveSources(t *testing.T) {
	for _, pattern := range []string{"testdata/good/*.golden.json", "testdata/bad/*.diag"} {
		goldens, _ := filepath.Glob(pattern)
		for _, g := range goldens {
			src := strings.TrimSuffix(strings.TrimSuffix(g, ".golden.json"), ".diag") + ".hcl"
			if _, err := os.Stat(src); err != nil {
				t.Errorf("%s has no %s", g, src)
			}
		}
	}
}

// TestDefault checks the embedded default against its golden and that each
// call returns a fresh copy.
func TestDefault(t *testing.T) {
	cfg := Default()
	golden(t, filepath.Join("testdata", "default.golden.json"), marshalConfig(t, cfg))
	if len(cfg.Services) != 1 || cfg.Services[0].Name != "helloworld" || !cfg.Services[0].Embedded() {
		t.Errorf("default services = %+v, want one embedded helloworld", cfg.Services)
	}
	if g := cfg.Gateway; g == nil || len(g.Routes) != 2 || g.Routes[0].Service != "helloworld" || g.Listen != DefaultGatewayListen {
		t.Errorf("default gateway = %+v, want two routes to helloworld on %s", g, DefaultGatewayListen)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("default has warnings: %v", cfg.Warnings)
	}
	cfg.Services[0].Name = "changed"
	if Default().Services[0].Name != "helloworld" {
		t.Error("Default returned shared state")
	}
	src := DefaultSource()
	src[0] = 'X'
	if DefaultSource()[0] == 'X' {
		t.Error("DefaultSource returned the embedded bytes themselves")
	}
	// A file with no blocks decodes to the same components as the default.
	empty, err := Parse(nil, "empty.hcl")
	if err != nil {
		t.Fatal(err)
	}
	empty.Services = cfg.Services[:1]
	empty.Services[0].Name = "helloworld"
	empty.Gateway = Default().Gateway // an empty file has no gateway
	got, want := marshalConfig(t, empty), marshalConfig(t, Default())
	if !bytes.Equal(got, want) {
		t.Errorf("an empty file's defaults differ from default.hcl:\n%s\nvs\n%s", got, want)
	}
}
