package opensips

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Sink receives decoded events; the daemon implements it.
type Sink interface {
	// Submit hands over one event. It must not block: when the daemon
	// cannot take the event it returns an error at once, and done is then
	// never called. The refusal is counted ResultBusy, or ResultDecodeError
	// when the error wraps ErrBadEvent (an event that can never be applied,
	// such as unusable addresses). Otherwise done is called exactly once, from any
	// goroutine, after the event was applied and its changes committed
	// (nil), or when that failed (the error says why). In event_stream
	// reliable mode, done is what answers OpenSIPS.
	Submit(ev Event, done func(error)) error
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ev Event, done func(error)) error

// Submit calls f.
func (f SinkFunc) Submit(ev Event, done func(error)) error { return f(ev, done) }

var _ Sink = SinkFunc(nil)

// UsrlocSink receives usrloc events (E_UL_AOR_INSERT, E_UL_CONTACT_INSERT,
// E_UL_CONTACT_UPDATE, …) that come over the event link next to
// E_IMC_MESSAGE; the daemon implements it to learn that a member can be
// reached again.
type UsrlocSink interface {
	// Usrloc is told of one decoded usrloc event. It must not block: it is
	// called on the read loop. ev is valid only during the call.
	Usrloc(ev *UsrlocEvent)
}

// UsrlocSinkFunc adapts a function to the UsrlocSink interface.
type UsrlocSinkFunc func(ev *UsrlocEvent)

// Usrloc calls f.
func (f UsrlocSinkFunc) Usrloc(ev *UsrlocEvent) { f(ev) }

var _ UsrlocSink = UsrlocSinkFunc(nil)

// frameHandler turns frames into Events for one read loop (a stream
// connection or a datagram socket). It owns its parser, so it is not safe for
// concurrent use.
type frameHandler struct {
	eventName string
	// usrloc makes decode accept the usrloc events too, into ul.
	usrloc bool
	ul     UsrlocEvent
	p      fastjson.Parser
}

// decode parses one frame as a JSON-RPC notification or request for the
// configured event and fills ev. id is a copy of the request id (nil for a
// notification). On error, result says how to count it and callid is the
// event's Call-ID when it could be read, for the log. When the handler
// takes usrloc events and the frame is one, it fills h.ul instead and
// result is ResultUsrloc.
func (h *frameHandler) decode(frame []byte, ev *Event) (id []byte, result, callid string, err error) {
	m, err := jsonrpc.Decode(&h.p, frame)
	if m.ID != nil && m.ID.Type() != fastjson.TypeNull {
		id = jsonrpc.AppendID(nil, m.ID)
	}
	if err != nil {
		if id == nil {
			id = leadingID(frame)
		}
		return id, ResultDecodeError, "", fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	if !m.IsRequest() {
		return id, ResultDecodeError, "", fmt.Errorf("%w: a JSON-RPC response, not an event", ErrBadEvent)
	}
	if string(m.Method) != h.eventName {
		if name := usrlocName(m.Method); h.usrloc && name != "" {
			if err := DecodeUsrlocEvent(name, m.Params, &h.ul); err != nil {
				return id, ResultDecodeError, "", err
			}
			return id, ResultUsrloc, "", nil
		}
		return id, ResultWrongEvent, paramCallIDOf(m.Params), fmt.Errorf("%w: %q", ErrWrongEvent, truncate(m.Method, 64))
	}
	if err := DecodeEvent(m.Params, ev); err != nil {
		return id, ResultDecodeError, paramCallIDOf(m.Params), err
	}
	return id, ResultOK, ev.Req.CallID, nil
}

// leadingID reads the id of a reliable-mode request that is not valid JSON,
// so that it can still be refused: event_stream writes the id first
// ({"id":1325833874,"jsonrpc":...}). nil when there is none.
func leadingID(frame []byte) []byte {
	const prefix = `{"id":`
	if !bytes.HasPrefix(frame, []byte(prefix)) {
		return nil
	}
	rest := frame[len(prefix):]
	n := 0
	for n < len(rest) && n < 20 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n >= len(rest) || rest[n] != ',' || !jsonrpc.ValidNumber(rest[:n]) {
		return nil // 0123 is no JSON number: it cannot be echoed
	}
	return append([]byte(nil), rest[:n]...)
}

// intake holds what both event servers share: configuration defaults, the
// source filter and rate-limited logging.
type intake struct {
	transport string
	sink      Sink
	usrloc    UsrlocSink // nil: usrloc events are refused as wrong_event
	obs       Observer
	log       *slog.Logger
	eventName string
	allow     []netip.Prefix
	logLimit  logging.Limit
}

func newIntake(transport string, sink Sink, usrloc UsrlocSink, obs Observer, l *slog.Logger, eventName string, allow []netip.Prefix) intake {
	if obs == nil {
		obs = NopObserver{}
	}
	if eventName == "" {
		eventName = DefaultEventName
	}
	return intake{
		transport: transport,
		sink:      sink,
		usrloc:    usrloc,
		obs:       obs,
		log:       logging.Child(l, logkey.SystemEvents).With(logkey.Transport, transport),
		eventName: eventName,
		allow:     allow,
		logLimit:  logging.Limit{Interval: time.Second},
	}
}

// handler returns a frame handler for one read loop.
func (in *intake) handler() frameHandler {
	return frameHandler{eventName: in.eventName, usrloc: in.usrloc != nil}
}

// registered hands a decoded usrloc event to the UsrlocSink and counts it.
func (in *intake) registered(ev *UsrlocEvent) {
	in.usrloc.Usrloc(ev)
	in.obs.EventReceived(in.transport, ResultUsrloc)
}

// submitRefused counts a Sink refusal: busy, unless the Sink says the event
// itself is bad.
func (in *intake) submitRefused(err error, callid string, remote any) {
	result := ResultBusy
	if errors.Is(err, ErrBadEvent) {
		result = ResultDecodeError
	}
	in.refused(result, err, callid, remote)
}

// refused counts and logs (rate-limited) one event that was not accepted.
func (in *intake) refused(result string, err error, callid string, remote any) {
	in.obs.EventReceived(in.transport, result)
	if ok, suppressed := in.logLimit.Allow(time.Now()); ok {
		in.log.Warn("event refused", logkey.Err, err, logkey.CallID, callid, logkey.Remote, remote, logkey.Suppressed, suppressed)
	}
}

// recovered logs and counts a panic raised while handling one frame.
func (in *intake) recovered(r any, remote any) {
	in.obs.EventReceived(in.transport, ResultPanic)
	in.log.Error("panic while handling an event", logkey.Panic, fmt.Sprint(r), logkey.Remote, remote, logkey.Stack, string(debug.Stack()))
}

// allowedAddr reports whether a source address passes the Allow list (an
// empty list allows any source).
func (in *intake) allowedAddr(a netip.Addr) bool {
	if len(in.allow) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range in.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowedNetAddr is allowedAddr for a net.Addr; non-IP sources (unix
// sockets) are always allowed: the socket's file permissions guard them.
func (in *intake) allowedNetAddr(addr net.Addr) bool {
	if len(in.allow) == 0 {
		return true
	}
	switch a := addr.(type) {
	case *net.TCPAddr:
		return in.allowedAddr(a.AddrPort().Addr())
	case *net.UDPAddr:
		return in.allowedAddr(a.AddrPort().Addr())
	}
	return true
}

// isClosedErr reports whether err comes from using a closed socket.
func isClosedErr(err error) bool { return errors.Is(err, net.ErrClosed) }

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
