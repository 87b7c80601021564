package tlsconfig

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// Terminated returns gRPC server credentials for a listener that already
// did the TLS handshake (a tls.Listener, or the client port's splitter):
// a *tls.Conn is reported with its TLS state, so handlers can read the
// client certificate from the peer's AuthInfo; any other connection is
// plaintext.
func Terminated() credentials.TransportCredentials { return terminated{} }

type terminated struct{}

func (terminated) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c, plainInfo(), nil
	}
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return nil, nil, err
	}
	return tc, credentials.TLSInfo{State: tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (terminated) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errClientSide
}

func (terminated) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (t terminated) Clone() credentials.TransportCredentials { return t }
func (terminated) OverrideServerName(string) error           { return nil }

// plainInfo is the AuthInfo of a plaintext connection.
func plainInfo() credentials.AuthInfo {
	return insecureInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
}

type insecureInfo struct{ credentials.CommonAuthInfo }

func (insecureInfo) AuthType() string { return "insecure" }

// errClientSide: Terminated credentials cannot dial.
var errClientSide = errors.New("tlsconfig: Terminated credentials are for servers only")
