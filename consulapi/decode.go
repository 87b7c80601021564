package consulapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// decodeBody reads a JSON request body into out as Consul's agent does:
// leniently (unknown fields are ignored, names match case-insensitively), a
// body that is not JSON or not of out's shape is a 400 "Request decode
// failed: ...", and a body over the size bound a 413.
func (s *Server) decodeBody(r *http.Request, out any) error {
	max := s.cfg.Limits.MaxBodyBytes
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return BadRequest("Request decode failed: %v", err)
	}
	if int64(len(b)) > max {
		return &HTTPError{Code: http.StatusRequestEntityTooLarge,
			Reason: fmt.Sprintf("Request body too large: the limit is %d bytes", max)}
	}
	if len(b) == 0 {
		return BadRequest("Request decode failed: EOF")
	}
	if err := json.Unmarshal(b, out); err != nil {
		return BadRequest("Request decode failed: %v", err)
	}
	return nil
}
