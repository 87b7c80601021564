package consulapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/synod-db/synod/consulkv"
)

// Bounds of /v1/txn, Consul's: its operations, and its body (txn_max_req_len).
const (
	maxTxnOps      = 64
	maxTxnBodySize = 512 << 10
)

func (s *Server) registerTxn() {
	s.Handle("/v1/txn", s.txn, http.MethodPut)
}

// txnOp is one operation of a /v1/txn body (Consul's api.TxnOp); only KV
// operations are served.
type txnOp struct {
	KV                            *consulkv.Op // the same fields as Consul's KVTxnOp
	Node, Service, Check, Session json.RawMessage
}

// txnResult is one result of a transaction (Consul's TxnResult).
type txnResult struct {
	KV *consulkv.Entry `json:",omitempty"`
}

// txnResponse is /v1/txn's answer (Consul's TxnResponse).
type txnResponse struct {
	Results []txnResult
	Errors  []txnError
}

// txn is PUT /v1/txn: up to 64 KV operations applied atomically, as one
// etcd transaction, or none of them; a failed one answers 409 with every
// failed operation's error. A transaction that only reads is served at the
// request's consistency mode.
func (s *Server) txn(w http.ResponseWriter, r *http.Request) (any, error) {
	ops, err := decodeTxn(r)
	if err != nil {
		return nil, err
	}
	writes := false
	for _, op := range ops {
		writes = writes || consulkv.IsWrite(op.Verb)
	}
	var results []*consulkv.Entry
	var errs []txnError
	if writes {
		results, errs, err = s.runKV(r.Context(), ops)
	} else {
		results, errs, err = s.readTxn(w, r, ops)
	}
	if err != nil {
		return nil, err
	}
	resp := txnResponse{Errors: errs}
	if len(errs) > 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		writeJSON(w, r, resp)
		return nil, nil
	}
	for _, e := range results {
		resp.Results = append(resp.Results, txnResult{KV: e})
	}
	return resp, nil
}

// readTxn runs a transaction of reads only on one view read at the
// request's consistency mode.
func (s *Server) readTxn(w http.ResponseWriter, r *http.Request, ops []consulkv.Op) ([]*consulkv.Entry, []txnError, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, nil, err
	}
	v, err := s.loadView(r.Context(), q.mode, ops)
	if err != nil {
		return nil, nil, err
	}
	s.setLeaderMeta(w)
	return applyOps(v, ops)
}

// decodeTxn reads a /v1/txn body with Consul's bounds and errors.
func decodeTxn(r *http.Request) ([]consulkv.Op, error) {
	tooLarge := &HTTPError{Code: http.StatusRequestEntityTooLarge,
		Reason: fmt.Sprintf("Request body too large, max size: %d bytes", maxTxnBodySize)}
	if r.ContentLength > maxTxnBodySize {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxTxnBodySize+1))
	if err != nil {
		return nil, BadRequest("Failed to parse body: %v", err)
	}
	if len(b) > maxTxnBodySize {
		return nil, tooLarge
	}
	var in []txnOp
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, BadRequest("Failed to parse body: %v", err)
	}
	if len(in) > maxTxnOps {
		return nil, &HTTPError{Code: http.StatusRequestEntityTooLarge,
			Reason: fmt.Sprintf("Transaction contains too many operations (%d > %d)", len(in), maxTxnOps)}
	}
	ops := make([]consulkv.Op, 0, len(in))
	for i, op := range in {
		if op.KV == nil {
			return nil, BadRequest("Operation %d: synod serves only KV operations in /v1/txn", i)
		}
		if len(op.KV.Value) > maxValueBytes {
			return nil, &HTTPError{Code: http.StatusRequestEntityTooLarge,
				Reason: fmt.Sprintf("Value for key %q is too large (%d > %d bytes)", op.KV.Key, len(op.KV.Value), maxValueBytes)}
		}
		ops = append(ops, *op.KV)
	}
	return ops, nil
}
