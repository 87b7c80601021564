package consuldns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// Timeouts of a TCP connection's reads and writes (miekg/dns's defaults).
const (
	tcpReadTimeout  = 2 * time.Second
	tcpWriteTimeout = 2 * time.Second
	// maxTCPQueries is how many questions one TCP connection may ask.
	maxTCPQueries = 128
	// maxUDPRead is the read buffer of a UDP question (EDNS0 allows up to
	// 64 KiB).
	maxUDPRead = 65535
)

// Server serves a Handler over UDP and TCP on one address.
type Server struct {
	udp, tcp *dns.Server
	pc       net.PacketConn
	ln       net.Listener
	wg       sync.WaitGroup
	log      *slog.Logger
}

// Listen binds UDP and TCP on addr (host:port; with port 0, TCP takes the
// port UDP got) for h: at most lim.MaxTCPConns TCP connections at once,
// each closed after lim.TCPIdle without a question.
func Listen(addr string, h dns.Handler, lim Limits, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim = lim.withDefaults()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("consuldns: listen on udp %s: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("consuldns: listen on tcp %s: %w", addr, err)
	}
	idle := lim.TCPIdle
	s := &Server{pc: pc, ln: ln, log: log,
		udp: &dns.Server{PacketConn: pc, Handler: h, UDPSize: maxUDPRead},
		tcp: &dns.Server{Listener: netutil.LimitListener(ln, lim.MaxTCPConns), Handler: h,
			ReadTimeout: tcpReadTimeout, WriteTimeout: tcpWriteTimeout, MaxTCPQueries: maxTCPQueries,
			IdleTimeout: func() time.Duration { return idle }}}
	return s, nil
}

// Addr is the address served (the UDP and TCP port are the same).
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// Serve answers on both transports until Close.
func (s *Server) Serve() {
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("DNS server stopped", "err", err)
			}
		}()
	}
}

// Close stops serving and waits for the servers' loops to end.
func (s *Server) Close() {
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		_ = srv.Shutdown() // an error means it had not started: closing its socket ends it
	}
	s.pc.Close()
	s.ln.Close()
	s.wg.Wait()
}
