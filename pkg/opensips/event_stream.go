package opensips

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/rawio"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// DefaultReplyTimeout bounds the write of one reliable-mode reply.
const DefaultReplyTimeout = time.Second

// EventStreamServer receives events from OpenSIPS's event_stream module
// over TCP: JSON objects back to back on long-lived connections (OpenSIPS
// keeps one and reconnects when it breaks, so several may be open at once).
// In reliable_mode each event is a request with an id, answered on the same
// connection when the Sink calls done. It follows the servers' lifecycle of
// pkg/sockets: Listen, Serve, Open, Close.
type EventStreamServer struct {
	// Addr is the TCP address to listen on, "127.0.0.1:9998" for instance;
	// port 0 picks a free one (see LocalAddr).
	Addr string
	// Sink receives the events. Required.
	Sink Sink
	// Usrloc, when set, receives the usrloc events (E_UL_*) that come on
	// the same socket; when nil they are refused as ResultWrongEvent.
	Usrloc UsrlocSink
	// Observer counts events; nil means NopObserver.
	Observer Observer
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger
	// EventName is the event accepted, DefaultEventName when "".
	EventName string
	// MaxFrame caps one JSON object; DefaultMaxFrame when 0. A larger one
	// closes the connection.
	MaxFrame int
	// Allow lists the networks OpenSIPS may connect from; empty allows any.
	// Other connections are closed at once and counted ResultRefusedSource.
	Allow []netip.Prefix
	// OnDisconnect, if set, is called when an event connection ends other
	// than by Close: OpenSIPS keeps one open, so its end usually means
	// OpenSIPS stopped or restarted (and lost the subscription). It must
	// not block.
	OnDisconnect func()
	// WriteTimeout bounds the write of one reliable-mode reply, so that a
	// peer that stops reading never holds the goroutine calling done for
	// long; DefaultReplyTimeout when 0. On timeout the connection is closed.
	WriteTimeout time.Duration
	// MaxConns caps the connections open at once (DefaultMaxConns when 0);
	// AtMaxConns says what happens to one more: AtMaxRefuse (the default,
	// "") or AtMaxCloseIdle. Either is counted ResultTooManyConns.
	MaxConns   int
	AtMaxConns string
	// FrameTimeout bounds a frame from its first byte to its last
	// (DefaultFrameTimeout when 0): a connection holding an unfinished
	// frame longer is closed and counted ResultFrameTimeout. Between
	// frames a connection may stay quiet for ever.
	FrameTimeout time.Duration

	initOnce      sync.Once
	in            intake
	ln            net.Listener
	mu            sync.Mutex
	conns         map[*streamConn]struct{}
	intakeStopped atomic.Bool
	life          sockets.Lifecycle
}

func (s *EventStreamServer) init() {
	s.initOnce.Do(func() {
		s.in = newIntake(TransportStream, s.Sink, s.Usrloc, s.Observer, s.Logger, s.EventName, s.Allow)
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = DefaultReplyTimeout
		}
		if s.MaxFrame <= 0 {
			s.MaxFrame = DefaultMaxFrame
		}
		if s.MaxConns <= 0 {
			s.MaxConns = DefaultMaxConns
		}
		if s.FrameTimeout <= 0 {
			s.FrameTimeout = DefaultFrameTimeout
		}
		s.conns = make(map[*streamConn]struct{})
	})
}

// Listen opens the TCP listener on Addr; ctx bounds only the binding.
func (s *EventStreamServer) Listen(ctx context.Context) error {
	s.init()
	if s.Sink == nil {
		return errNoSink
	}
	return s.life.Listen(func() error {
		ln, err := sockets.Listen(ctx, sockets.Address{Network: sockets.TCP, Addr: s.Addr})
		if err != nil {
			return err
		}
		s.ln = ln
		s.in.log.Info("listening for OpenSIPS event_stream", logkey.Addr, ln.Addr().String())
		return nil
	})
}

// Open listens (unless Listen was called) and serves in a goroutine until
// Close; ctx bounds only the opening.
func (s *EventStreamServer) Open(ctx context.Context) error {
	s.init()
	return s.life.Open(ctx, s.Listen, s.Serve, func(err error) {
		s.in.log.Error("event_stream listener failed", logkey.Err, err)
	})
}

// Serve accepts connections on the listener Listen opened until Close (then
// it returns nil) or the listener fails. Each connection is read by its own
// goroutine.
func (s *EventStreamServer) Serve() error {
	s.init()
	return s.life.Serve(s.accept)
}

// accept is the accept loop of the listener.
func (s *EventStreamServer) accept() error {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.life.Closing() || s.intakeStopped.Load() {
				return nil
			}
			if isClosedErr(err) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.in.log.Warn("accept failed", logkey.Err, err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.in.allowedNetAddr(c.RemoteAddr()) {
			s.in.refused(ResultRefusedSource, errors.New("connection from a source not in allow"), "", c.RemoteAddr().String())
			c.Close()
			continue
		}
		if !s.limitConns(c) {
			continue
		}
		sc := newStreamConn(c, s.WriteTimeout)
		sc.state.lastRead.Store(time.Now().UnixNano())
		if !s.track(sc) {
			c.Close()
			return nil
		}
	}
}

// LocalAddr returns the address Listen bound, nil before. (Addr is taken by
// the configuration field.)
func (s *EventStreamServer) LocalAddr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the listener, closes every connection and waits for their
// goroutines. Replies to events still being applied are lost. It is safe to
// call more than once.
func (s *EventStreamServer) Close() error {
	s.init()
	return s.life.Close(func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			c.conn.Close()
		}
		return sockets.CloseQuietly(s.ln)
	})
}

// StopIntake stops taking events, for a graceful stop: no new connection
// is accepted and nothing more is read, but the open connections stay open
// so that reliable-mode replies to the events taken already can still be
// written. Close closes them.
func (s *EventStreamServer) StopIntake() {
	s.init()
	if !s.intakeStopped.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = sockets.CloseQuietly(s.ln)
	now := time.Now()
	for c := range s.conns {
		_ = c.conn.SetReadDeadline(now) // the read loop ends; the connection stays
	}
}

// track registers a connection and starts its goroutine; false once closed.
func (s *EventStreamServer) track(c *streamConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.life.Closing() {
		return false
	}
	s.conns[c] = struct{}{}
	return s.life.Go(func() { s.serveConn(c) })
}

func (s *EventStreamServer) serveConn(c *streamConn) {
	defer func() {
		if s.intakeStopped.Load() {
			// Kept open for the replies still to come; Close closes it.
			return
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.conn.Close()
		if s.OnDisconnect != nil && !s.life.Closing() {
			s.OnDisconnect()
		}
	}()
	log := s.in.log.With(logkey.Remote, c.remote)
	log.Debug("event_stream connection opened")
	h := s.in.handler()
	clock := &frameClock{s: s, c: c, timeout: s.FrameTimeout}
	sp := NewFrameSplitter(clock, s.MaxFrame)
	clock.sp = sp
	for {
		frame, err := sp.Next()
		if err != nil {
			switch {
			case s.intakeStopped.Load():
				log.Debug("event_stream intake stopped; the connection stays open for replies")
			case errors.Is(err, ErrFrameTooBig):
				s.in.refused(ResultTooBig, err, "", c.remote)
				log.Warn("closing event_stream connection: event over max_frame", logkey.Size, s.MaxFrame)
			case errors.Is(err, ErrBadFrame):
				s.in.refused(ResultDecodeError, err, "", c.remote)
				log.Warn("closing event_stream connection: not a stream of JSON objects")
			case errors.Is(err, ErrFrameTimeout):
				s.in.refused(ResultFrameTimeout, err, "", c.remote) // logged there, at most once a second
			case c.state.evicted.Load():
				log.Debug("event_stream connection closed to make room for a new one")
			case errors.Is(err, io.EOF), isClosedErr(err):
				log.Debug("event_stream connection closed")
			default:
				log.Info("event_stream connection lost", logkey.Err, err)
			}
			return
		}
		s.handleFrame(c, &h, frame)
	}
}

// handleFrame decodes and submits one event; a panic is recovered, logged
// and counted, and the connection goes on.
func (s *EventStreamServer) handleFrame(c *streamConn, h *frameHandler, frame []byte) {
	var a *ack
	defer func() {
		if r := recover(); r != nil {
			s.in.recovered(r, c.remote)
			if a != nil {
				a.done(errPanic) // unless the Sink answered already
			}
		}
	}()
	var ev Event
	id, result, callid, err := h.decode(frame, &ev)
	if err != nil {
		s.in.refused(result, err, callid, c.remote)
		if id != nil {
			c.reply(id, err)
		}
		return
	}
	if result == ResultUsrloc {
		// Nothing to commit: taken is done.
		s.in.registered(&h.ul)
		if id != nil {
			c.reply(id, nil)
		}
		return
	}
	ev.Transport = TransportStream
	done := ignoreDone
	if id != nil {
		a = &ack{c: c, id: id}
		done = a.done
	}
	if err := s.in.sink.Submit(ev, done); err != nil {
		s.in.submitRefused(err, callid, c.remote)
		if a != nil {
			a.done(err)
		}
		return
	}
	s.in.obs.EventReceived(TransportStream, ResultOK)
}

func ignoreDone(error) {}

// okResult is the result imcd acknowledges a reliable-mode event with.
var okResult = []byte(`"OK"`)

// streamConn is one event_stream connection. Replies may come from any
// goroutine (the Sink's done), so writes are serialised by wmu.
type streamConn struct {
	conn    net.Conn
	timeout time.Duration
	remote  string
	state   connState
	// r and w read and write conn, with raw system calls where they can
	// (pkg/rawio: an event and its reply cost no wake-up of the runtime's
	// monitor thread).
	r io.Reader
	w io.Writer

	wmu  sync.Mutex
	wbuf []byte
}

func newStreamConn(c net.Conn, timeout time.Duration) *streamConn {
	sc := &streamConn{conn: c, timeout: timeout, remote: c.RemoteAddr().String(), r: c, w: c}
	if sys, ok := c.(syscall.Conn); ok {
		if raw, err := rawio.New(sys); err == nil {
			sc.r, sc.w = raw, raw
		}
	}
	return sc
}

// reply writes the JSON-RPC response for one reliable-mode request:
// {"jsonrpc":"2.0","result":"OK","id":N}, or an error object with code
// -32000 and the reason when err is not nil. A write that fails or times out
// closes the connection (OpenSIPS reconnects).
func (c *streamConn) reply(id []byte, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wbuf[:0]
	if err == nil {
		b = jsonrpc.AppendResult(b, id, okResult)
	} else {
		b = jsonrpc.AppendError(b, id, &jsonrpc.Error{Code: jsonrpc.CodeServerError, Message: err.Error()})
	}
	c.wbuf = b
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, werr := c.w.Write(b); werr != nil {
		c.conn.Close()
	}
}

// ack answers one reliable-mode request once, whatever the Sink does.
type ack struct {
	c    *streamConn
	id   []byte
	sent atomic.Bool
}

func (a *ack) done(err error) {
	if a.sent.CompareAndSwap(false, true) {
		a.c.reply(a.id, err)
	}
}
