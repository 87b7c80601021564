//go:build unix

package server

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketControl sets SO_REUSEPORT and SO_REUSEADDR on a listener's socket
// before it binds, as etcd's --socket-reuse-port and
// --socket-reuse-address do (nil when neither is asked for; Go sets
// SO_REUSEADDR on its listeners anyway).
func (c *Config) socketControl() func(network, address string, rc syscall.RawConn) error {
	if !c.SocketReusePort && !c.SocketReuseAddress {
		return nil
	}
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if c.SocketReuseAddress {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
			if serr == nil && c.SocketReusePort {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
