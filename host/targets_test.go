package host_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host"
	"github.com/microhost/micro/internal/syncbuf"
)

// targetsConfig routes to endpoints the greeter serves, one it does not, one
// named per request, and one of a service run elsewhere.
const targetsConfig = `service "greeter" {}

registry "memory" {}

gateway {
  route "GET /hello/{name}" {
    service  = "greeter"
    endpoint = "Greeter.Hello"
  }
  route "GET /typo/{name}" {
    service  = "greeter"
    endpoint = "Greeter.Helo"
  }
  route "POST /any/{endpoint}" {
    service  = "greeter"
    endpoint = "{endpoint}"
  }
  aggregate "GET /both/{name}" {
    part "hello" {
      service  = "greeter"
      endpoint = "Greeter.Hello"
    }
    part "count" {
      service  = "greeter"
      endpoint = "Greeter.Cuont"
    }
  }
}
`

// TestUnknownEndpointIsWarnedOnceReady checks that a route or part calling an
// endpoint the running service does not serve is named in a warning at its
// place in the file, with the endpoints it does serve.
func TestUnknownEndpointIsWarnedOnceReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "micro.hcl")
	if err := os.WriteFile(path, []byte(targetsConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	startHost(t, host.WithConfigFile(path), host.WithLogger(log), host.GatewayListen("127.0.0.1:0"),
		host.WithServiceHandler("greeter", new(greeter.Greeter)))

	var warned []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "Unknown endpoint") {
			warned = append(warned, line)
		}
	}
	want := []string{
		`micro.hcl:12:16: Unknown endpoint "Greeter.Helo"; route "GET /typo/{name}" calls greeter Greeter.Helo, which the running greeter does not serve, so it will answer 404; expected one of: Greeter.Count, Greeter.Hello`,
		`micro.hcl:25:18: Unknown endpoint "Greeter.Cuont"; part "count" calls greeter Greeter.Cuont, which the running greeter does not serve, so it will answer 404; expected one of: Greeter.Count, Greeter.Hello`,
	}
	if len(warned) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d:\n%s", strings.Join(warned, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i, w := range want {
		if !strings.HasSuffix(warned[i], w) {
			t.Errorf("warning %d:\n%s\nwant it to end with\n%s", i, warned[i], w)
		}
	}
}
