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
		// Components get levels of their own (telemetry.log.levels).
		IndependentLevels: true,
	})
}

// logger is the logger of the component called name ("gateway", "plugin",
// a service's name), at its telemetry.log.levels level when it has one.
func (h *Host) logger(name string) hclog.Logger {
	l := h.log.Named(name)
	if v, ok := h.cfg.Telemetry.Log.Levels[name]; ok && h.opts.logger == nil {
		l.SetLevel(hclog.LevelFromString(v))
	}
	return l
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
