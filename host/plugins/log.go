package plugins

import (
	"bytes"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// lineLogger receives a plugin's raw output (stderr lines that are not hclog
// JSON, such as a panic's stack, and anything printed to stdout after the
// handshake) and logs each line at error level, tagged with the plugin's name
// and version, so crashes are visible in the host log. JSON lines are skipped:
// go-plugin already logs them at their own level.
type lineLogger struct {
	log hclog.Logger
	mu  sync.Mutex
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
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
		if len(line) == 0 || line[0] == '{' {
			continue
		}
		l.log.Error("plugin output", "line", string(line))
	}
	return len(p), nil
}
