package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"go.etcd.io/etcd/pkg/v3/httputil"
)

// Access is etcd's access control for the HTTP side of a client port
// (--cors, --host-whitelist, and the client-certificate rule of the
// gateway). It applies to every HTTP request on a client URL, the gateway's
// and /health's alike, as etcd's does.
type Access struct {
	// CORS lists the origins allowed to read responses; empty or "*"
	// allows all (etcd's default).
	CORS []string
	// HostWhitelist lists the Host names accepted on plaintext
	// connections; empty or "*" accepts all (etcd's default). It guards
	// against DNS rebinding (CVE-2018-5702).
	HostWhitelist []string
	// ClientCertAuth is --client-cert-auth.
	ClientCertAuth bool
	// AuthEnabled reports whether auth is on; nil means never.
	AuthEnabled func() bool
}

// Wrap returns h behind the access control.
func (a Access) Wrap(h http.Handler) http.Handler {
	return &accessControl{a: a, cors: set(a.CORS), hosts: set(a.HostWhitelist), next: h}
}

type accessControl struct {
	a           Access
	cors, hosts map[string]bool // nil: all allowed
	next        http.Handler
}

// set is a list as a set; nil when it allows all.
func set(list []string) map[string]bool {
	s := map[string]bool{}
	for _, v := range list {
		if v == "*" {
			return nil
		}
		if v != "" {
			s[v] = true
		}
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

func (ac *accessControl) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v3beta/") {
		r.URL.Path = Prefix + strings.TrimPrefix(r.URL.Path, "/v3beta/")
	}
	if r.TLS == nil {
		if host := httputil.GetHostname(r); ac.hosts != nil && !ac.hosts[host] {
			http.Error(w, hostRefused(host), http.StatusMisdirectedRequest)
			return
		}
	} else if ac.a.ClientCertAuth && ac.a.AuthEnabled != nil && ac.a.AuthEnabled() && strings.HasPrefix(r.URL.Path, Prefix) {
		for _, chain := range r.TLS.VerifiedChains {
			if len(chain) > 0 && chain[0].Subject.CommonName != "" {
				http.Error(w, "CommonName of client sending a request against gateway will be ignored and not used as expected", http.StatusBadRequest)
				return
			}
		}
	}
	if ac.cors == nil {
		addCORS(w, "*")
	} else if origin := r.Header.Get("Origin"); ac.cors[origin] {
		addCORS(w, origin)
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	ac.next.ServeHTTP(w, r)
}

// addCORS adds the headers etcd adds for an allowed origin.
func addCORS(w http.ResponseWriter, origin string) {
	h := w.Header()
	h.Add("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
	h.Add("Access-Control-Allow-Origin", origin)
	h.Add("Access-Control-Allow-Headers", "accept, content-type, authorization")
}

// hostRefused is the body etcd answers a request whose Host is not
// whitelisted with.
func hostRefused(host string) string {
	return fmt.Sprintf(`
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist %q

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`, host)
}
