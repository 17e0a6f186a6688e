package plugins

import (
	"bytes"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// LineWriter returns a writer that hands each complete, non-empty line written
// to it (without the line ending) to fn, one at a time: for turning a child
// process's output into log entries.
func LineWriter(fn func(line []byte)) io.Writer { return &lineWriter{fn: fn} }

type lineWriter struct {
	fn  func([]byte)
	mu  sync.Mutex
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(l.buf[:i], "\r")
		l.buf = l.buf[i+1:]
		if len(line) > 0 {
			l.fn(line)
		}
	}
	return len(p), nil
}

// outputLogger logs a plugin's raw output (stderr lines that are not hclog JSON,
// such as a panic's stack, and anything printed to stdout) at error level,
// tagged with the plugin's name and version, so crashes are visible in the host
// log. JSON lines are skipped: go-plugin already logs them at their own level.
func outputLogger(log hclog.Logger) io.Writer {
	return LineWriter(func(line []byte) {
		if line[0] != '{' {
			log.Error("plugin output", "line", string(line))
		}
	})
}

// launchLogger is the logger go-plugin gets for one launch of a plugin. go-plugin
// tags some lines with "plugin" set to the binary's path, which would replace the
// host's tag (the plugin's id): that key becomes "path". The exit of a process
// the host ended on purpose (a stop, or the end of a describe-only launch) is
// logged at debug level, not as an error.
type launchLogger struct {
	hclog.Logger
	ended *atomic.Bool // set before the host kills the process
}

func (l *launchLogger) Log(level hclog.Level, msg string, args ...any) {
	if msg == "plugin process exited" && level == hclog.Error && l.ended.Load() {
		level = hclog.Debug
	}
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "plugin" {
			args = slices.Clone(args)
			args[i] = "path"
			break
		}
	}
	l.Logger.Log(level, msg, args...)
}

func (l *launchLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *launchLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *launchLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *launchLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *launchLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }
