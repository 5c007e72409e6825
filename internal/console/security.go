// security.go is the console's defence against being driven by anyone but its user: the
// Host check (DNS rebinding), the CSRF checks on every state-changing request, the
// response headers that keep the page from being framed or sniffed and confine its
// scripts to its own files, and the one place errors become HTTP statuses.
package console

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// csrfHeader carries the per-process token on every POST. A custom header also makes any
// cross-origin fetch a CORS preflight, which the console never approves.
const csrfHeader = "X-Vltava-Csrf"

// contentSecurityPolicy allows only the console's own scripts, styles and API: no inline
// script, no eval, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// normalizeHost lower-cases a host name and strips an IPv6 literal's brackets.
func normalizeHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

// checkHost refuses a request whose Host header is not an allowed name. A page on
// another site can make a victim's browser resolve its own name to 127.0.0.1 (DNS
// rebinding) and then talk to the console as same-origin; the Host it sends is still
// the attacker's name.
func (c *Console) checkHost(r *http.Request) *apiError {
	if len(c.hosts) == 0 {
		return nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if c.hosts[normalizeHost(host)] {
		return nil
	}
	return &apiError{status: http.StatusForbidden, code: "HOST_NOT_ALLOWED",
		msg: "host " + r.Host + " is not one this console answers to (see vltava console --allow-host)"}
}

// checkWrite is the CSRF defence of a state-changing request: a browser's Origin, when it
// sends one, must be this console's own; Sec-Fetch-Site, when sent, must say same-origin;
// the body must be JSON (a cross-site form cannot send that without a preflight); and the
// token from the page must be in csrfHeader.
func (c *Console) checkWrite(r *http.Request) *apiError {
	refuse := func(why string) *apiError {
		return &apiError{status: http.StatusForbidden, code: "CSRF", msg: "request refused: " + why}
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return refuse("origin " + o + " is not this console")
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return refuse("cross-site request (Sec-Fetch-Site: " + s + ")")
	}
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.token)) != 1 {
		return refuse("missing or wrong " + csrfHeader + " token (reload the page)")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "BAD_CONTENT_TYPE", msg: "want Content-Type: application/json"}
	}
	return nil
}

// apiError is an error with the HTTP status and the code the UI shows.
type apiError struct {
	status int
	code   string // a Kafka error name (TOPIC_ALREADY_EXISTS) or the console's own
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "BAD_REQUEST", msg: fmt.Sprintf(format, args...)}
}

func conflict(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: code, msg: fmt.Sprintf(format, args...)}
}

// toAPIError maps an error to its HTTP status: a Kafka error by what it means (the
// client's mistake, a conflict, something missing, the cluster's failure), a timeout as
// 504, anything else as 502, since the cluster, not the console, failed.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		status := http.StatusBadGateway
		switch ke {
		case kerr.TopicAlreadyExists, kerr.NonEmptyGroup, kerr.UnstableOffsetCommit, kerr.RebalanceInProgress:
			status = http.StatusConflict
		case kerr.UnknownTopicOrPartition, kerr.UnknownTopicID, kerr.GroupIDNotFound:
			status = http.StatusNotFound
		case kerr.InvalidTopicException, kerr.InvalidPartitions, kerr.InvalidReplicationFactor,
			kerr.InvalidReplicaAssignment, kerr.InvalidConfig, kerr.InvalidRequest, kerr.PolicyViolation,
			kerr.InvalidGroupID, kerr.UnsupportedVersion, kerr.TopicDeletionDisabled:
			status = http.StatusBadRequest
		case kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed:
			status = http.StatusForbidden
		case kerr.RequestTimedOut:
			status = http.StatusGatewayTimeout
		}
		return &apiError{status: status, code: ke.Message, msg: err.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{status: http.StatusGatewayTimeout, code: "TIMEOUT", msg: "no answer from the cluster in time: " + err.Error()}
	}
	return &apiError{status: http.StatusBadGateway, code: "CLUSTER_ERROR", msg: err.Error()}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{e.msg, e.code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error(), "code": "INTERNAL"})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// readJSON decodes a POST body into v, refusing unknown fields and trailing data so a
// misspelt field is an error rather than a silently ignored setting.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "TOO_LARGE", msg: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
		}
		return badRequest("request body: %v", err)
	}
	if dec.More() {
		return badRequest("request body: more than one JSON value")
	}
	return nil
}

// firstShardErr unwraps kadm's "request X has N separate shard errors, first: ..." to the
// first error itself, so its Kafka code still picks the HTTP status.
func firstShardErr(err error) error {
	var se *kadm.ShardErrors
	if errors.As(err, &se) && len(se.Errs) > 0 {
		return se.Errs[0].Err
	}
	return err
}

// kafkaErr keeps the broker's own message with a Kafka error ("TOPIC_ALREADY_EXISTS:
// Topic 't' already exists."); errors.Is still finds the code.
func kafkaErr(err error, brokerMsg string) error {
	var ke *kerr.Error
	if err == nil || !errors.As(err, &ke) {
		return err
	}
	detail := strings.TrimSpace(brokerMsg)
	for _, prefix := range []string{ke.Error(), ke.Message} {
		if rest, ok := strings.CutPrefix(detail, prefix); ok {
			detail = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
		}
	}
	if detail == "" || detail == ke.Description {
		return err
	}
	return &brokerError{code: ke, msg: detail}
}

// brokerError is a Kafka error with the broker's message in place of the generic one.
type brokerError struct {
	code *kerr.Error
	msg  string
}

func (e *brokerError) Error() string { return e.code.Message + ": " + e.msg }
func (e *brokerError) Unwrap() error { return e.code }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
