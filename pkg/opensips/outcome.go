package opensips

import (
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// outcomeOf maps the reply to a t_uac_dlg request onto the scheduler's
// Outcome: a result carrying the final "Status" ("200 OK", "408 Request
// Timeout", ...), or a JSON-RPC error, whose code says which refusal it is
// (faultOf).
func outcomeOf(m *jsonrpc.Message) delivery.Outcome {
	if m.Error != nil {
		e, err := jsonrpc.DecodeError(m.Error)
		if err != nil {
			return delivery.Outcome{Fault: delivery.FaultRefused, Err: fmt.Errorf("%w: malformed error object", ErrBadReply), Reason: "malformed error object"}
		}
		return delivery.Outcome{Fault: faultOf(e), Err: e, Reason: e.Error()}
	}
	st := m.Result.GetStringBytes("Status")
	code, ok := statusCode(st)
	if !ok {
		return delivery.Outcome{Fault: delivery.FaultRefused, Err: fmt.Errorf("%w: no Status in result", ErrBadReply), Reason: "no Status in result"}
	}
	return delivery.Outcome{Status: code, Reason: statusText(st)}
}

// faultOf says which refusal a JSON-RPC error to t_uac_dlg is: 476
// "Unresolvable destination" and 477 "Send failed" mean the member cannot
// be reached now; 500, which tm returns when it cannot build the
// transaction (out of shared memory, "Server error occurred (…/MI/UAC)",
// "MI/UAC failed"), means OpenSIPS is short of its own resources; any other
// refuses this request.
func faultOf(e *jsonrpc.Error) delivery.Fault {
	switch e.Code {
	case 476, 477:
		return delivery.FaultNoRoute
	case 500:
		return delivery.FaultOverloaded
	}
	return delivery.FaultRefused
}

// The outcomes the client makes itself, when OpenSIPS gives none.

// abortedOutcome ends a request still in flight at Close.
func abortedOutcome() delivery.Outcome {
	return delivery.Outcome{Fault: delivery.FaultAborted, Err: ErrClosed, Reason: ErrClosed.Error()}
}

// notSentOutcome ends a request that could not reach OpenSIPS (err says
// why).
func notSentOutcome(err error) delivery.Outcome {
	return delivery.Outcome{Fault: delivery.FaultNotSent, Err: fmt.Errorf("%w: %w", ErrUnreachable, err), Reason: err.Error()}
}

// lostOutcome ends a request OpenSIPS did not answer within timeout.
func lostOutcome(timeout time.Duration) delivery.Outcome {
	return delivery.Outcome{Fault: delivery.FaultLost, Err: fmt.Errorf("%w in %v: delivery outcome unknown", ErrTimeout, timeout), Reason: "no reply"}
}

// sendError is what Send returns when it writes nothing: the error, with
// the delivery.Fault it amounts to for the scheduler (delivery.Sender).
type sendError struct {
	err   error
	fault delivery.Fault
}

func (e *sendError) Error() string         { return e.err.Error() }
func (e *sendError) Unwrap() error         { return e.err }
func (e *sendError) Fault() delivery.Fault { return e.fault }

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
