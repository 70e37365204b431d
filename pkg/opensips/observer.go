package opensips

import "time"

// Observer is told what happens on the link, for metrics. Implementations
// must be cheap and safe for concurrent use: they are called from the read
// loops and the MI client's goroutines.
type Observer interface {
	// EventReceived counts one event frame. transport is TransportStream or
	// TransportDatagram; result is one of the Result* constants.
	EventReceived(transport, result string)
	// DeliveryDone counts one outbound MI t_uac_dlg request by its final
	// status class (delivery.Outcome.Class) and the time from send to
	// outcome.
	DeliveryDone(status string, d time.Duration)
}

// Transports, as reported in Event.Transport and to Observer.EventReceived.
const (
	TransportStream   = "stream"
	TransportDatagram = "datagram"
)

// Results of an event frame, as reported to Observer.EventReceived.
const (
	ResultOK            = "ok"             // decoded and accepted by the Sink
	ResultDecodeError   = "decode_error"   // not JSON-RPC, or missing/malformed params
	ResultTooBig        = "too_big"        // over MaxFrame / MaxDatagram
	ResultBusy          = "busy"           // the Sink refused it (full)
	ResultRefusedSource = "refused_source" // sender not in Allow
	ResultWrongEvent    = "wrong_event"    // method is not the configured event name
	ResultUsrloc        = "usrloc"         // a usrloc event, handed to the UsrlocSink
	ResultPanic         = "panic"          // handling it panicked (recovered)
	// Connections, not frames: one beyond EventStreamServer.MaxConns
	// (refused, or an idle one closed for it), one whose frame took longer
	// than FrameTimeout (closed).
	ResultTooManyConns = "too_many_connections"
	ResultFrameTimeout = "frame_timeout"
)

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

// EventReceived does nothing.
func (NopObserver) EventReceived(string, string) {}

// DeliveryDone does nothing.
func (NopObserver) DeliveryDone(string, time.Duration) {}

var _ Observer = NopObserver{}
