//go:build !linux

package plugin

import "os"

// handshakeOut is nil where fd 1 cannot be redirected; go-plugin then writes its
// handshake to os.Stdout as usual.
var handshakeOut *os.File
