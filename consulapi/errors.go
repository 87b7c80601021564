package consulapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/synod-db/synod/catalog"
)

// HTTPError is an answer other than 200: its status code and the plain
// text body Consul sends with it.
type HTTPError struct {
	Code   int
	Reason string
	Allow  []string // for 405: the methods the endpoint takes
}

// Error returns the body text.
func (e *HTTPError) Error() string { return e.Reason }

// BadRequest is Consul's 400 with reason as its body.
func BadRequest(format string, a ...any) error {
	return &HTTPError{Code: http.StatusBadRequest, Reason: fmt.Sprintf(format, a...)}
}

// NotFound is Consul's 404 with reason as its body.
func NotFound(format string, a ...any) error {
	return &HTTPError{Code: http.StatusNotFound, Reason: fmt.Sprintf(format, a...)}
}

// errNoLeader is Consul's text for a cluster without a leader.
const errNoLeader = "No cluster leader"

// toHTTP maps any error to the status and body Consul would send: our own
// HTTPErrors as they are, the catalog's sentinels by kind, the store's
// no-leader and timeout errors as Consul's, anything else as 500.
func toHTTP(err error) *HTTPError {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, catalog.ErrInvalid), errors.Is(err, catalog.ErrLimit):
		return &HTTPError{Code: http.StatusBadRequest, Reason: catalog.Reason(err)}
	case errors.Is(err, catalog.ErrNotFound):
		return &HTTPError{Code: http.StatusNotFound, Reason: catalog.Reason(err)}
	case isNoLeader(err):
		return &HTTPError{Code: http.StatusInternalServerError, Reason: errNoLeader}
	case errors.Is(err, context.DeadlineExceeded):
		return &HTTPError{Code: http.StatusInternalServerError, Reason: "rpc error: request timed out"}
	}
	return &HTTPError{Code: http.StatusInternalServerError, Reason: err.Error()}
}

func isNoLeader(err error) bool {
	return errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrGRPCNoLeader) ||
		strings.Contains(err.Error(), rpctypes.ErrNoLeader.Error())
}

// writeError sends err as Consul does: the status, and the reason as a
// plain text body.
func writeError(w http.ResponseWriter, err error) {
	he := toHTTP(err)
	if he.Code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", strings.Join(he.Allow, ","))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(he.Code)
	fmt.Fprint(w, he.Reason)
}
