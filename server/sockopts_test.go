//go:build unix

package server

import (
	"strings"
	"testing"
)

// --socket-reuse-port: a second listener may bind the port a first one
// holds with the same option; without it the bind fails.
func TestSocketReusePort(t *testing.T) {
	reuse := &Member{cfg: Config{SocketReusePort: true}}
	first, err := reuse.listenURL("http://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	url := "http://" + first.Addr().String()
	plain := &Member{cfg: Config{}}
	if ln, err := plain.listenURL(url); err == nil || !strings.Contains(err.Error(), "address already in use") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("without --socket-reuse-port: %v, want address already in use", err)
	}
	second, err := reuse.listenURL(url)
	if err != nil {
		t.Fatalf("with --socket-reuse-port: %v", err)
	}
	second.Close()
	both := &Member{cfg: Config{SocketReusePort: true, SocketReuseAddress: true}}
	third, err := both.listenURL(url)
	if err != nil {
		t.Fatalf("with both options: %v", err)
	}
	third.Close()
}
