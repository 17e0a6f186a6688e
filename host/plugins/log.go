package plugins

import (
	"bytes"
	"io"
	"sync"

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
