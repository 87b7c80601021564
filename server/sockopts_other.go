//go:build !unix

package server

import (
	"errors"
	"syscall"
)

// socketControl refuses the socket options where they are not supported.
func (c *Config) socketControl() func(network, address string, rc syscall.RawConn) error {
	if !c.SocketReusePort && !c.SocketReuseAddress {
		return nil
	}
	return func(string, string, syscall.RawConn) error {
		return errors.New("--socket-reuse-port and --socket-reuse-address are only supported on unix systems")
	}
}
