package opensips

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// DefaultMaxDatagram is the default cap on one event datagram, the largest
// UDP payload (OpenSIPS sends up to 65,507 bytes over IPv4).
const DefaultMaxDatagram = 65535

// EventDatagramServer receives events from OpenSIPS's event_datagram
// module: one notification per UDP or unix datagram, fire and forget (no
// reply is ever sent). It follows the servers' lifecycle of pkg/sockets:
// Listen, Serve, Open, Close.
type EventDatagramServer struct {
	// Network is "udp" (the default) or "unixgram".
	Network string
	// Addr is "127.0.0.1:9999" for udp (port 0 picks a free one, see
	// LocalAddr), a socket path for unixgram. A stale socket file at that
	// path is replaced; the file is removed on Close.
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
	// MaxDatagram caps one datagram; DefaultMaxDatagram when 0. Longer
	// datagrams are counted ResultTooBig and dropped unparsed.
	MaxDatagram int
	// Allow lists the networks events may come from (udp only); empty
	// allows any.
	Allow []netip.Prefix
	// ReadBuffer sets SO_RCVBUF when > 0, so that bursts are not dropped by
	// the kernel.
	ReadBuffer int

	initOnce sync.Once
	in       intake
	conn     net.PacketConn
	unlink   string // the unix socket file Listen created
	life     sockets.Lifecycle
}

func (s *EventDatagramServer) init() {
	s.initOnce.Do(func() {
		s.in = newIntake(TransportDatagram, s.Sink, s.Usrloc, s.Observer, s.Logger, s.EventName, s.Allow)
		if s.MaxDatagram <= 0 {
			s.MaxDatagram = DefaultMaxDatagram
		}
		if s.Network == "" {
			s.Network = sockets.UDP
		}
	})
}

// Listen opens the socket on Addr; ctx bounds only the binding.
func (s *EventDatagramServer) Listen(ctx context.Context) error {
	s.init()
	if s.Sink == nil {
		return errNoSink
	}
	return s.life.Listen(func() error {
		pc, err := sockets.ListenPacket(ctx, sockets.Address{Network: s.Network, Addr: s.Addr})
		if err != nil {
			return err
		}
		if s.ReadBuffer > 0 {
			if rb, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
				_ = rb.SetReadBuffer(s.ReadBuffer)
			}
		}
		if s.Network == sockets.Unixgram {
			s.unlink = s.Addr
		}
		s.conn = pc
		s.in.log.Info("listening for OpenSIPS event_datagram", logkey.Addr, pc.LocalAddr().String())
		return nil
	})
}

// Open listens (unless Listen was called) and serves in a goroutine until
// Close; ctx bounds only the opening.
func (s *EventDatagramServer) Open(ctx context.Context) error {
	s.init()
	return s.life.Open(ctx, s.Listen, s.Serve, func(err error) {
		s.in.log.Error("event_datagram socket failed", logkey.Err, err)
	})
}

// Serve reads events from the socket Listen opened until Close (then it
// returns nil) or the socket fails.
func (s *EventDatagramServer) Serve() error {
	s.init()
	return s.life.Serve(s.serve)
}

// LocalAddr returns the address Listen bound, nil before.
func (s *EventDatagramServer) LocalAddr() net.Addr {
	if s.conn == nil {
		return nil
	}
	return s.conn.LocalAddr()
}

// StopIntake stops taking events, for a graceful stop. Datagram events get
// no replies, so it is Close.
func (s *EventDatagramServer) StopIntake() { _ = s.Close() }

// Close closes the socket, waits for the read loop and removes the unix
// socket file. It is safe to call more than once.
func (s *EventDatagramServer) Close() error {
	s.init()
	return s.life.Close(func() error {
		err := sockets.CloseQuietly(s.conn)
		if s.unlink != "" {
			err = errors.Join(err, sockets.RemoveFile(s.unlink))
		}
		return err
	})
}

// serve is the read loop of the socket: one reused buffer, one parser, no
// goroutine per datagram.
func (s *EventDatagramServer) serve() error {
	pc := s.conn
	h := s.in.handler()
	// One byte more than the cap: a datagram that fills the buffer was
	// longer than MaxDatagram (the kernel truncates it silently).
	buf := make([]byte, s.MaxDatagram+1)
	udp, _ := pc.(*net.UDPConn)
	var backoff time.Duration
	for {
		var (
			n   int
			src source
			err error
		)
		if udp != nil {
			n, src.ap, err = udp.ReadFromUDPAddrPort(buf)
			if err == nil && !s.in.allowedAddr(src.ap.Addr()) {
				s.in.refused(ResultRefusedSource, errors.New("datagram from a source not in allow"), "", src.String())
				continue
			}
		} else {
			n, src.addr, err = pc.ReadFrom(buf)
		}
		if err != nil {
			if s.life.Closing() {
				return nil
			}
			if isClosedErr(err) {
				return err
			}
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			s.in.log.Warn("event datagram read failed", logkey.Err, err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if n > s.MaxDatagram {
			s.in.refused(ResultTooBig, fmt.Errorf("%w: datagram over %d bytes", ErrFrameTooBig, s.MaxDatagram), "", src.String())
			continue
		}
		s.handleDatagram(&h, buf[:n], src)
	}
}

// handleDatagram decodes and submits one event; a panic is recovered, logged
// and counted. Datagrams never get a reply, even when they carry an id.
func (s *EventDatagramServer) handleDatagram(h *frameHandler, frame []byte, src source) {
	defer func() {
		if r := recover(); r != nil {
			s.in.recovered(r, src.String())
		}
	}()
	var ev Event
	_, result, callid, err := h.decode(frame, &ev)
	if err != nil {
		s.in.refused(result, err, callid, src.String())
		return
	}
	if result == ResultUsrloc {
		s.in.registered(&h.ul)
		return
	}
	ev.Transport = TransportDatagram
	if err := s.in.sink.Submit(ev, ignoreDone); err != nil {
		s.in.submitRefused(err, callid, src.String())
		return
	}
	s.in.obs.EventReceived(TransportDatagram, ResultOK)
}

// source is the sender of a datagram, kept unboxed until a log needs it.
type source struct {
	ap   netip.AddrPort // udp
	addr net.Addr       // other networks
}

func (s source) String() string {
	if s.addr != nil {
		return s.addr.String()
	}
	if s.ap.IsValid() {
		return s.ap.String()
	}
	return ""
}
