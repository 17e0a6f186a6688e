package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/microhost/micro"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	heavy := []string{"k8s.io/client-go", "github.com/hashicorp/consul/api", "github.com/nats-io/nats.go"}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			irel, ours := strings.CutPrefix(imp, module+"/")
			switch {
			case strings.HasPrefix(rel, "sdk/") && ours && !strings.HasPrefix(irel, "sdk/"):
				t.Errorf("%s imports %s: the SDK imports nothing from host, gateway, plugins or cmd", p.ImportPath, imp)
			case strings.HasPrefix(rel, "plugins/") && ours && !strings.HasPrefix(irel, "sdk/"):
				t.Errorf("%s imports %s: plugins import the SDK only", p.ImportPath, imp)
			case strings.HasPrefix(rel, "gateway") && ours && strings.HasPrefix(irel, "host"):
				t.Errorf("%s imports %s: the gateway never imports the host", p.ImportPath, imp)
			}
		}
		// Span exporters (OTLP over gRPC and HTTP, stdout) are the host's to
		// choose; the SDK records through the OpenTelemetry API and SDK only.
		if strings.HasPrefix(rel, "sdk/") || strings.HasPrefix(rel, "plugins/") {
			for _, d := range p.Deps {
				if strings.HasPrefix(d, "go.opentelemetry.io/otel/exporters/") {
					t.Errorf("%s depends on %s: span exporters live in the host", p.ImportPath, d)
				}
			}
		}
		if strings.HasPrefix(rel, "sdk/") || strings.HasPrefix(rel, "host") {
			for _, d := range p.Deps {
				for _, h := range heavy {
					if strings.HasPrefix(d, h) {
						t.Errorf("%s depends on %s: heavy client libraries live only in the plugin that needs them", p.ImportPath, d)
					}
				}
			}
		}
	}
}
