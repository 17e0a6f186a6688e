package host

import (
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/microhost/micro/host/config"
)

// newLogger builds the host's logger from telemetry.log: text on a terminal and
// JSON otherwise when the format is auto.
func newLogger(l config.Log) hclog.Logger {
	json := l.Format == "json"
	if l.Format == "" || l.Format == "auto" {
		json = !isTerminal(os.Stderr)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "micro",
		Level:      hclog.LevelFromString(l.Level),
		Output:     os.Stderr,
		JSONFormat: json,
	})
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
