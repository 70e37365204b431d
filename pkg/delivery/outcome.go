package delivery

import "time"

// Outcome is how one request to OpenSIPS ended, in the scheduler's terms:
// the final SIP status, or why none came back. A Sender maps its wire's
// replies onto it (pkg/opensips's MI client maps t_uac_dlg's).
type Outcome struct {
	// Status is the final SIP status code, 0 if none came back.
	Status int
	// Reason is the status line ("404 Not Found") or, without a status,
	// the error text.
	Reason string
	// Fault says why no final status came back; FaultNone when one did.
	Fault Fault
	// Err is the Sender's error behind a fault, for logs and callers that
	// want its detail; nil without a fault.
	Err error
	// At is when OpenSIPS's answer reached imcd, when the Sender knows it
	// (the kernel's receive time): a reply's latency, which paces the
	// writes, then does not depend on when the reply was read. Zero: when
	// the outcome is handled.
	At time.Time
}

// Fault is why a request got no final SIP status.
type Fault uint8

// Faults of an Outcome.
const (
	// FaultNone: a final status came back.
	FaultNone Fault = iota
	// FaultRefused: OpenSIPS refused this request (a JSON-RPC error), or
	// answered something the Sender could not read.
	FaultRefused
	// FaultNoRoute: OpenSIPS refused the request because its destination
	// did not resolve or could not be sent to (t_uac_dlg's 476, 477): the
	// member cannot be reached now.
	FaultNoRoute
	// FaultOverloaded: OpenSIPS refused the request for want of its own
	// resources (t_uac_dlg's 500: out of shared memory): the message was
	// fine and may be sent again later, more slowly.
	FaultOverloaded
	// FaultLost: OpenSIPS never answered: the request or its reply was
	// lost, and whether the MESSAGE left is unknown.
	FaultLost
	// FaultNotSent: the request never reached OpenSIPS (it could not be
	// written, or nothing listens), so it is safe to send again.
	FaultNotSent
	// FaultAborted: the request was still in flight when the Sender
	// closed.
	FaultAborted
)

// Status classes of an outcome, as Class returns them: the label of the
// deliveries metric.
const (
	Class2xx         = "2xx"
	Class3xx         = "3xx"
	Class4xx         = "4xx"
	Class5xx         = "5xx"
	Class6xx         = "6xx"
	ClassError       = "error"       // OpenSIPS refused the request or answered nonsense
	ClassTimeout     = "timeout"     // no reply in time: outcome unknown
	ClassUnreachable = "unreachable" // could not be sent / nothing listens
	ClassAborted     = "aborted"     // still in flight when the Sender closed
)

// Delivered reports whether the MESSAGE got a 2xx.
func (o Outcome) Delivered() bool { return o.Fault == FaultNone && o.Status >= 200 && o.Status < 300 }

// Class returns the status class for metrics: "2xx" … "6xx", or one of
// ClassError, ClassTimeout, ClassUnreachable, ClassAborted.
func (o Outcome) Class() string {
	switch o.Fault {
	case FaultNone:
	case FaultLost:
		return ClassTimeout
	case FaultNotSent:
		return ClassUnreachable
	case FaultAborted:
		return ClassAborted
	default:
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
// Unavailable or 604 Does Not Exist Anywhere, or its destination did not
// resolve or could not be sent to (FaultNoRoute).
func (o Outcome) MemberUnreachable() bool {
	switch o.Fault {
	case FaultNone:
	case FaultNoRoute:
		return true
	default:
		return false
	}
	switch o.Status {
	case 404, 408, 410, 480, 604:
		return true
	}
	return false
}

// Overloaded reports whether OpenSIPS refused the request for want of its
// own resources (FaultOverloaded).
func (o Outcome) Overloaded() bool { return o.Fault == FaultOverloaded }

// Lost reports whether OpenSIPS never answered (FaultLost, ClassTimeout).
func (o Outcome) Lost() bool { return o.Fault == FaultLost }

// NotSent reports whether the request never reached OpenSIPS (FaultNotSent,
// ClassUnreachable).
func (o Outcome) NotSent() bool { return o.Fault == FaultNotSent }

// Aborted reports whether the Sender closed with the request in flight
// (FaultAborted, ClassAborted).
func (o Outcome) Aborted() bool { return o.Fault == FaultAborted }

// String returns the status line, or the error text without one.
func (o Outcome) String() string {
	if o.Err != nil {
		return o.Err.Error()
	}
	return o.Reason
}
