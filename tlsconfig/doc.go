// Package tlsconfig turns etcd-style certificate flags (--cert-file,
// --key-file, --trusted-ca-file, --client-cert-auth, --auto-tls and their
// --peer-* twins, --cipher-suites, --tls-min-version) into crypto/tls
// configurations for the member's listeners and for its peer dialer.
//
// # Reloading
//
// A Files value re-reads its certificate, key and CA bundle from disk when
// they change, without a restart. Every handshake asks for the current
// material; the files' size and modification time are compared with what
// was loaded at most once per ReloadInterval, and the files are parsed again
// only when one of them changed. A change that does not load (a half
// written file, a key that does not match the certificate, a CA file with
// no certificate) is logged and the previous material stays in use, so a
// rotation that is done in two steps (certificate, then key) never breaks
// the listener: the new pair is served from the first check after both are
// in place. Connections already established keep the certificate they were
// made with, as in etcd.
//
// Unlike etcd, the trusted CA bundle is reloaded too, on both sides: a
// server verifies client certificates against the current bundle, and the
// peer dialer verifies the other members against it.
package tlsconfig
