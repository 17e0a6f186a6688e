package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microhost/micro/host/plugins"
)

// BenchmarkRunStartup measures `micro run` from launching the process until it
// prints that it is ready: with the embedded default, and with a config whose
// registry and broker are plugins.
func BenchmarkRunStartup(b *testing.B) {
	dir := b.TempDir()
	build := func(out, pkg string) string {
		bin := filepath.Join(dir, out)
		if o, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", pkg, err, o)
		}
		return bin
	}
	micro := build("micro", ".")
	lock := &plugins.Lock{}
	for id, pkg := range map[string]string{
		"registry-mem": "../../host/plugins/testdata/registry-memory",
		"broker-mem":   "../../host/plugins/testdata/broker-memory",
	} {
		bin := build("micro-"+id, pkg)
		sum, _ := plugins.FileSHA256(bin)
		lock.Put(&plugins.LockedPlugin{ID: id, Version: "0.0.1", SHA256: sum, Path: bin})
	}
	pluginDir := filepath.Join(dir, "with-plugins")
	os.MkdirAll(pluginDir, 0o755)
	lock.Write(filepath.Join(pluginDir, plugins.LockFileName))
	os.WriteFile(filepath.Join(pluginDir, "micro.hcl"), []byte(`
service "helloworld" {}
registry "mem" {}
broker "mem" {}
plugin "registry-mem" {
  version = "0.0.1"
}
plugin "broker-mem" {
  version = "0.0.1"
}
`), 0o644)
	defaultDir := filepath.Join(dir, "default")
	os.MkdirAll(defaultDir, 0o755)

	for _, tc := range []struct{ name, dir string }{{"embedded_default", defaultDir}, {"two_plugins", pluginDir}} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(micro, "run", "--gateway", "127.0.0.1:0")
				cmd.Dir = tc.dir
				out, _ := cmd.StdoutPipe()
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				lines := bufio.NewScanner(out)
				ready := false
				for lines.Scan() {
					if strings.HasPrefix(lines.Text(), "ready in") {
						ready = true
						break
					}
				}
				total += time.Since(start)
				cmd.Process.Signal(syscall.SIGTERM)
				go func() {
					for lines.Scan() {
					}
				}()
				cmd.Wait()
				if !ready {
					b.Fatal("micro run never got ready")
				}
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-ready")
		})
	}
}
