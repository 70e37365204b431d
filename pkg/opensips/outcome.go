package opensips

import (
	"errors"
	"fmt"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// Outcome is how one t_uac_dlg request ended.
type Outcome struct {
	// Status is the final SIP status code OpenSIPS reported, 0 if none.
	Status int
	// Reason is OpenSIPS's status line ("404 Not Found") or, without a
	// status, the error text.
	Reason string
	// Err is nil when a SIP status came back; otherwise a *jsonrpc.Error
	// (OpenSIPS refused the request), or an error wrapping ErrTimeout,
	// ErrUnreachable, ErrClosed or ErrBadReply.
	Err error
}

// Delivered reports whether the MESSAGE got a 2xx.
func (o Outcome) Delivered() bool { return o.Err == nil && o.Status >= 200 && o.Status < 300 }

// Class returns the status class for metrics: "2xx" … "6xx", or one of
// ClassError, ClassTimeout, ClassUnreachable, ClassAborted.
func (o Outcome) Class() string {
	if o.Err != nil {
		switch {
		case errors.Is(o.Err, ErrTimeout):
			return ClassTimeout
		case errors.Is(o.Err, ErrUnreachable):
			return ClassUnreachable
		case errors.Is(o.Err, ErrClosed):
			return ClassAborted
		}
		return ClassError
	}
	switch o.Status / 100 {
	case 2:
		return Class2xx
	case 3:
		return Class3xx
	case 4:
		return Class4xx
	case 5:
		return Class5xx
	case 6:
		return Class6xx
	}
	return ClassError
}

// MemberUnreachable reports whether the outcome says the recipient cannot be
// reached now, as opposed to a refusal of this one message: the MESSAGE
// ended 404 Not Found (not registered), 408 Request Timeout (registered but
// not answering: fr_timeout expired), 410 Gone, 480 Temporarily
// Unavailable or 604 Does Not Exist Anywhere, or OpenSIPS refused the
// request because the destination did not resolve or could not be sent to
// (JSON-RPC 476 "Unresolvable destination", 477 "Send failed").
func (o Outcome) MemberUnreachable() bool {
	if o.Err != nil {
		var je *jsonrpc.Error
		return errors.As(o.Err, &je) && (je.Code == 476 || je.Code == 477)
	}
	switch o.Status {
	case 404, 408, 410, 480, 604:
		return true
	}
	return false
}

// Overloaded reports whether OpenSIPS refused the request for want of its
// own resources: a JSON-RPC 500 error, which tm's t_uac_dlg returns when it
// cannot build the transaction (out of shared memory, "Server error
// occurred (…/MI/UAC)", "MI/UAC failed"). The message itself was fine and may
// be sent again later, more slowly.
func (o Outcome) Overloaded() bool {
	var je *jsonrpc.Error
	return o.Err != nil && errors.As(o.Err, &je) && je.Code == 500
}

// Lost reports whether OpenSIPS never answered (ClassTimeout): the request
// or its reply was lost, and whether the MESSAGE left is unknown.
func (o Outcome) Lost() bool { return o.Err != nil && errors.Is(o.Err, ErrTimeout) }

// NotSent reports whether the request never reached OpenSIPS
// (ClassUnreachable: the datagram could not be written, or nothing listens
// on the MI socket), so it is safe to send again.
func (o Outcome) NotSent() bool { return o.Err != nil && errors.Is(o.Err, ErrUnreachable) }

// String returns the status line, or the error text without one.
func (o Outcome) String() string {
	if o.Err != nil {
		return o.Err.Error()
	}
	return o.Reason
}

// outcomeOf reads the reply to a t_uac_dlg request: a result carrying the
// final "Status" ("200 OK", "408 Request Timeout", ...), or a JSON-RPC error.
func outcomeOf(m *jsonrpc.Message) Outcome {
	if m.Error != nil {
		e, err := jsonrpc.DecodeError(m.Error)
		if err != nil {
			return Outcome{Err: fmt.Errorf("%w: malformed error object", ErrBadReply), Reason: "malformed error object"}
		}
		return Outcome{Err: e, Reason: e.Error()}
	}
	st := m.Result.GetStringBytes("Status")
	code, ok := statusCode(st)
	if !ok {
		return Outcome{Err: fmt.Errorf("%w: no Status in result", ErrBadReply), Reason: "no Status in result"}
	}
	return Outcome{Status: code, Reason: statusText(st)}
}

// commonStatuses are the final statuses a MESSAGE usually gets; returning
// these constants instead of converting the parser's bytes saves an
// allocation per delivery.
var commonStatuses = [...]string{
	"200 OK", "202 Accepted", "404 Not Found", "408 Request Timeout",
	"480 Temporarily Unavailable", "486 Busy Here", "500 Server Internal Error",
	"503 Service Unavailable",
}

func statusText(st []byte) string {
	for _, s := range commonStatuses {
		if string(st) == s {
			return s
		}
	}
	return string(st)
}

// statusCode reads the three-digit code at the start of a status line.
func statusCode(st []byte) (int, bool) {
	if len(st) < 3 || (len(st) > 3 && st[3] != ' ') {
		return 0, false
	}
	code := 0
	for _, c := range st[:3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, false
	}
	return code, true
}
