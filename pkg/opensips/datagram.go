package opensips

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// DefaultMaxDatagram is the default cap on one event datagram, the largest
// UDP payload (OpenSIPS sends up to 65,507 bytes over IPv4).
const DefaultMaxDatagram = 65535

// DatagramServer receives events from OpenSIPS's event_datagram module: one
// notification per UDP or unix datagram, fire and forget (no reply is ever
// sent). Set the fields, then Open (or ListenPacket and ServePacket), then
// Close.
type DatagramServer struct {
	// Network is "udp" (the default) or "unixgram".
	Network string
	// Addr is "127.0.0.1:9999" for udp, a socket path for unixgram. A stale
	// socket file at that path is replaced; the file is removed on Close.
	Addr string
	// Sink receives the events. Required.
	Sink Sink
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

	initOnce  sync.Once
	in        intake
	mu        sync.Mutex
	conns     []net.PacketConn
	paths     []string // unix socket files to remove on Close
	closed    bool
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func (s *DatagramServer) init() {
	s.initOnce.Do(func() {
		s.in = newIntake(TransportDatagram, s.Sink, s.Observer, s.Logger, s.EventName, s.Allow)
		if s.MaxDatagram <= 0 {
			s.MaxDatagram = DefaultMaxDatagram
		}
		if s.Network == "" {
			s.Network = "udp"
		}
	})
}

// ListenPacket opens the socket on Addr.
func (s *DatagramServer) ListenPacket() (net.PacketConn, error) {
	s.init()
	switch s.Network {
	case "udp", "udp4", "udp6":
	case "unixgram":
		if fi, err := os.Lstat(s.Addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(s.Addr)
		}
	default:
		return nil, fmt.Errorf("opensips: unsupported event datagram network %q", s.Network)
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(context.Background(), s.Network, s.Addr)
	if err != nil {
		return nil, err
	}
	if s.ReadBuffer > 0 {
		if rb, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
			_ = rb.SetReadBuffer(s.ReadBuffer)
		}
	}
	if s.Network == "unixgram" {
		s.mu.Lock()
		s.paths = append(s.paths, s.Addr)
		s.mu.Unlock()
	}
	return pc, nil
}

// Open opens the socket and serves it in the background until Close.
func (s *DatagramServer) Open(ctx context.Context) error {
	s.init()
	if s.Sink == nil {
		return errNoSink
	}
	pc, err := s.ListenPacket()
	if err != nil {
		return err
	}
	if !s.addConn(pc) {
		return ErrClosed
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.serve(pc); err != nil {
			s.in.log.Error("event_datagram socket failed", keyErr, err)
		}
	}()
	s.in.log.Info("listening for OpenSIPS event_datagram", keyAddr, pc.LocalAddr().String())
	return nil
}

// ServePacket reads events from pc until Close (then it returns nil) or pc
// fails.
func (s *DatagramServer) ServePacket(pc net.PacketConn) error {
	s.init()
	if s.Sink == nil {
		pc.Close()
		return errNoSink
	}
	if !s.addConn(pc) {
		return ErrClosed
	}
	return s.serve(pc)
}

func (s *DatagramServer) addConn(pc net.PacketConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		pc.Close()
		return false
	}
	s.conns = append(s.conns, pc)
	return true
}

// LocalAddr returns the address of the first socket, nil before it is served.
func (s *DatagramServer) LocalAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		return nil
	}
	return s.conns[0].LocalAddr()
}

// Close closes the sockets, waits for the read loops and removes unix socket
// files. It is safe to call more than once.
func (s *DatagramServer) Close() error {
	s.init()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, pc := range s.conns {
			pc.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		for _, p := range s.paths {
			_ = os.Remove(p)
		}
	})
	return nil
}

func (s *DatagramServer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// serve is the read loop of one socket: one reused buffer, one parser, no
// goroutine per datagram.
func (s *DatagramServer) serve(pc net.PacketConn) error {
	h := frameHandler{eventName: s.in.eventName}
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
			if s.isClosed() {
				return nil
			}
			if isClosedErr(err) {
				return err
			}
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			s.in.log.Warn("event datagram read failed", keyErr, err)
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
func (s *DatagramServer) handleDatagram(h *frameHandler, frame []byte, src source) {
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
