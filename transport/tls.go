package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
)

// secureKey marks, in a resolver.Address's attributes, a peer URL whose
// scheme (https, unixs) asks for TLS.
type secureKey struct{}

// markSecure sets the TLS mark on a.
func markSecure(a resolver.Address) resolver.Address {
	a.Attributes = a.Attributes.WithValue(secureKey{}, true)
	return a
}

// urlCredentials dials TLS to the addresses of https and unixs peer URLs
// and plaintext to the others, so one transport serves a cluster whose
// members use either. config returns the TLS configuration of one
// connection (read per dial, so rotated certificates and CA bundles apply
// to the next connection).
type urlCredentials struct {
	config func(serverName string) *tls.Config
}

func defaultTLS(serverName string) *tls.Config {
	return &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
}

func (c urlCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := credentials.ClientHandshakeInfoFromContext(ctx)
	if secure, _ := info.Attributes.Value(secureKey{}).(bool); !secure {
		return conn, plainAuth{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
	}
	host, _, err := net.SplitHostPort(authority)
	if err != nil {
		host = authority
	}
	cfg := c.config(host)
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("transport: TLS handshake with %s: %w", authority, err)
	}
	return tc, credentials.TLSInfo{State: tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (urlCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, fmt.Errorf("transport: peer dial credentials cannot serve")
}

func (urlCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c urlCredentials) Clone() credentials.TransportCredentials { return c }

func (urlCredentials) OverrideServerName(string) error { return nil }

type plainAuth struct{ credentials.CommonAuthInfo }

func (plainAuth) AuthType() string { return "insecure" }

// DialTLS is the dial option of the peer transport's credentials: TLS,
// configured by config (nil: Go's defaults), to https and unixs peer URLs,
// plaintext to http and unix ones. FetchMembers callers pass it to reach
// TLS peers with the member's peer certificate.
func DialTLS(config func(serverName string) *tls.Config) grpc.DialOption {
	if config == nil {
		config = defaultTLS
	}
	return grpc.WithTransportCredentials(urlCredentials{config: config})
}
