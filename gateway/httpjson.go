package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"supportgate/gateway/users"
	"supportgate/session"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 64 << 10

// apiError is an error with the HTTP status and the message the client
// sees. Anything else that reaches writeErr is a 500 with a generic text.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// decodeJSON reads one JSON object into v: application/json only, at most
// MaxBodyBytes, no unknown fields, nothing after the object.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, "request body must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxBodyBytes)
		}
		return errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON: %s", jsonProblem(err))
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid JSON: data after the object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid JSON: data after the object")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing large input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	case errors.Is(err, session.ErrBadScope), errors.Is(err, session.ErrBadRequest):
		return err.Error()
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// writeErr maps err to a status and a JSON {"error": "..."} body. Domain
// errors say what went wrong; anything unexpected is logged and reported as
// an internal error without detail.
func (g *Gateway) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := g.classify(err)
	if status == http.StatusInternalServerError {
		g.log.Error("request failed", "method", r.Method, "path", redactPath(r.URL.Path), "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="supportgate"`)
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func (g *Gateway) classify(err error) (int, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.msg
	}
	for _, m := range []struct {
		err    error
		status int
	}{
		{session.ErrNotFound, http.StatusNotFound},
		{users.ErrNotFound, http.StatusNotFound},
		{session.ErrBadScope, http.StatusBadRequest},
		{session.ErrBadDuration, http.StatusBadRequest},
		{session.ErrBadRequest, http.StatusBadRequest},
		{errBadInput, http.StatusBadRequest},
		{session.ErrLinkExpired, http.StatusGone},
		{session.ErrBoundElsewhere, http.StatusForbidden},
		{session.ErrScopeNotAllowed, http.StatusForbidden},
		{session.ErrTooMany, http.StatusTooManyRequests},
		{session.ErrEnded, http.StatusConflict},
		{session.ErrNotActive, http.StatusConflict},
		{session.ErrHelperBound, http.StatusConflict},
		{session.ErrNotRequested, http.StatusConflict},
		{session.ErrNoExtension, http.StatusConflict},
		{session.ErrConflict, http.StatusConflict},
		{users.ErrExists, http.StatusConflict},
		{users.ErrConflict, http.StatusConflict},
		{session.ErrClosed, http.StatusServiceUnavailable},
	} {
		if errors.Is(err, m.err) {
			if m.status == http.StatusNotFound {
				// The bare sentinel: the store's wrapping ("sqlite: session
				// ID: ...") is no business of the client's, and a session
				// that does not exist must read like one the caller may not see.
				return m.status, m.err.Error()
			}
			return m.status, err.Error()
		}
	}
	return http.StatusInternalServerError, "internal error"
}
