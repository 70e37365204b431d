package opensips

import (
	"errors"
	"strconv"
)

// Errors of the OpenSIPS link. Wrapped errors carry the details; test with
// errors.Is.
var (
	// ErrFrameTooBig: an event_stream object grew past MaxFrame, or a
	// datagram past MaxDatagram. On a stream the connection is closed, since
	// the splitter cannot find the next object boundary reliably.
	ErrFrameTooBig = errors.New("opensips: event too big")
	// ErrBadFrame: an event_stream connection carried something other than a
	// JSON object where an object must start; the connection is closed.
	ErrBadFrame = errors.New("opensips: event stream out of sync")
	// ErrBadEvent is wrapped by every error of DecodeEvent (see ParamError).
	ErrBadEvent = errors.New("opensips: bad event")
	// ErrWrongEvent: a notification named another event than the configured one.
	ErrWrongEvent = errors.New("opensips: unexpected event name")
	// ErrClosed: the component is closed (or was closed while the request
	// was in flight).
	ErrClosed = errors.New("opensips: closed")
	// ErrTimeout: OpenSIPS did not answer an MI request in time. For
	// t_uac_dlg the outcome of the delivery is unknown.
	ErrTimeout = errors.New("opensips: no reply from OpenSIPS")
	// ErrUnreachable: the MI request could not be sent, or the kernel reported
	// that nothing listens on OpenSIPS's MI socket.
	ErrUnreachable = errors.New("opensips: MI socket unreachable")
	// ErrBadReply: OpenSIPS's reply was not a JSON-RPC response imcd understands.
	ErrBadReply = errors.New("opensips: unexpected MI reply")
	// ErrUnsafeHeader: a value would not be safe in the headers param of
	// t_uac_dlg (header injection), so the request is not built.
	ErrUnsafeHeader = errors.New("opensips: unsafe header value")
	// ErrForbiddenRequest: Forward refuses a request without a method or a
	// JSON array, both of which crash OpenSIPS's mi_datagram.
	ErrForbiddenRequest = errors.New("opensips: request would crash OpenSIPS's mi_datagram")

	// errNoSink: an event server was started without a Sink.
	errNoSink = errors.New("opensips: event server has no Sink")
	// errPanic answers a reliable-mode event whose handling panicked.
	errPanic = errors.New("opensips: internal error while handling the event")
)

// ParamError says which event param is wrong and why. It wraps ErrBadEvent.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string {
	return "opensips: bad event param " + strconv.Quote(e.Param) + ": " + e.Reason
}

// Unwrap returns ErrBadEvent.
func (e *ParamError) Unwrap() error { return ErrBadEvent }
