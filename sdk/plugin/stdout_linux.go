//go:build linux

package plugin

import (
	"os"
	"syscall"
)

// handshakeOut is the real stdout, kept for go-plugin's handshake line, when this
// process was started as a plugin; fd 1 itself then points at stderr so a stray
// print anywhere in the plugin cannot corrupt the handshake.
var handshakeOut = guardStdout()

func guardStdout() *os.File {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		return nil
	}
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		syscall.Close(fd)
		return nil
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "/dev/stdout (handshake)")
}
