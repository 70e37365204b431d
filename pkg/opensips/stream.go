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
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// DefaultReplyTimeout bounds the write of one reliable-mode reply.
const DefaultReplyTimeout = time.Second

// StreamServer receives events from OpenSIPS's event_stream module over TCP:
// JSON objects back to back on long-lived connections (OpenSIPS keeps one and
// reconnects when it breaks, so several may be open at once). In
// reliable_mode each event is a request with an id, answered on the same
// connection when the Sink calls done. Set the fields, then Open (or Listen
// and Serve), then Close.
type StreamServer struct {
	// Addr is the TCP address to listen on, "127.0.0.1:9998" for instance.
	Addr string
	// Sink receives the events. Required.
	Sink Sink
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
	// WriteTimeout bounds the write of one reliable-mode reply, so that a
	// peer that stops reading never holds the goroutine calling done for
	// long; DefaultReplyTimeout when 0. On timeout the connection is closed.
	WriteTimeout time.Duration

	initOnce  sync.Once
	in        intake
	mu        sync.Mutex
	listeners []net.Listener
	conns     map[*streamConn]struct{}
	closed    bool
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func (s *StreamServer) init() {
	s.initOnce.Do(func() {
		s.in = newIntake(TransportStream, s.Sink, s.Observer, s.Logger, s.EventName, s.Allow)
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = DefaultReplyTimeout
		}
		if s.MaxFrame <= 0 {
			s.MaxFrame = DefaultMaxFrame
		}
		s.conns = make(map[*streamConn]struct{})
	})
}

// Listen opens the TCP listener on Addr.
func (s *StreamServer) Listen() (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), "tcp", s.Addr)
}

// Open listens on Addr and serves in the background until Close.
func (s *StreamServer) Open(ctx context.Context) error {
	s.init()
	if s.Sink == nil {
		return errNoSink
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	if !s.addListener(ln) {
		return ErrClosed
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.serve(ln); err != nil {
			s.in.log.Error("event_stream listener failed", keyErr, err)
		}
	}()
	s.in.log.Info("listening for OpenSIPS event_stream", keyAddr, ln.Addr().String())
	return nil
}

// addListener registers ln so that Close closes it; false (and ln closed)
// once the server is closed.
func (s *StreamServer) addListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return false
	}
	s.listeners = append(s.listeners, ln)
	return true
}

// Serve accepts connections on ln until ln fails or Close is called (then
// it returns nil). Each connection is read by its own goroutine.
func (s *StreamServer) Serve(ln net.Listener) error {
	s.init()
	if s.Sink == nil {
		ln.Close()
		return errNoSink
	}
	if !s.addListener(ln) {
		return ErrClosed
	}
	return s.serve(ln)
}

func (s *StreamServer) serve(ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if isClosedErr(err) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.in.log.Warn("accept failed", keyErr, err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.in.allowedNetAddr(c.RemoteAddr()) {
			s.in.refused(ResultRefusedSource, errors.New("connection from a source not in allow"), "", c.RemoteAddr().String())
			c.Close()
			continue
		}
		sc := &streamConn{conn: c, timeout: s.WriteTimeout, remote: c.RemoteAddr().String()}
		if !s.track(sc) {
			c.Close()
			return nil
		}
		go s.serveConn(sc)
	}
}

// LocalAddr returns the address of the first listener, nil before Serve.
// (Addr is taken by the configuration field.)
func (s *StreamServer) LocalAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[0].Addr()
}

// Close stops the listeners, closes every connection and waits for their
// goroutines. Replies to events still being applied are lost. It is safe to
// call more than once.
func (s *StreamServer) Close() error {
	s.init()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, ln := range s.listeners {
			ln.Close()
		}
		for c := range s.conns {
			c.conn.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

func (s *StreamServer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers a connection and its goroutine; false once closed.
func (s *StreamServer) track(c *streamConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *StreamServer) serveConn(c *streamConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.conn.Close()
	}()
	log := s.in.log.With(keyRemote, c.remote)
	log.Debug("event_stream connection opened")
	h := frameHandler{eventName: s.in.eventName}
	sp := NewFrameSplitter(c.conn, s.MaxFrame)
	for {
		frame, err := sp.Next()
		if err != nil {
			switch {
			case errors.Is(err, ErrFrameTooBig):
				s.in.refused(ResultTooBig, err, "", c.remote)
				log.Warn("closing event_stream connection: event over max_frame", keySize, s.MaxFrame)
			case errors.Is(err, ErrBadFrame):
				s.in.refused(ResultDecodeError, err, "", c.remote)
				log.Warn("closing event_stream connection: not a stream of JSON objects")
			case errors.Is(err, io.EOF), isClosedErr(err):
				log.Debug("event_stream connection closed")
			default:
				log.Info("event_stream connection lost", keyErr, err)
			}
			return
		}
		s.handleFrame(c, &h, frame)
	}
}

// handleFrame decodes and submits one event; a panic is recovered, logged
// and counted, and the connection goes on.
func (s *StreamServer) handleFrame(c *streamConn, h *frameHandler, frame []byte) {
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

	wmu  sync.Mutex
	wbuf []byte
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
	if _, werr := c.conn.Write(b); werr != nil {
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
