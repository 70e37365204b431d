package opensipstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// Options configure a fake OpenSIPS. The zero value is usable.
type Options struct {
	// MIAddr is the mi_datagram UDP address, "127.0.0.1:0" when "".
	MIAddr string
	// FrTimeout is tm's fr_timeout: how long a t_uac_dlg to a URI set with
	// SetNoAnswer waits before its "408 Request Timeout"; 300 ms when 0 (the
	// captures used 4 s).
	FrTimeout time.Duration
	// ReplyDelay is how long a t_uac_dlg "transaction" takes before its
	// final reply, unless SetDelay says otherwise for the URI; 0 answers
	// at once (still asynchronously).
	ReplyDelay time.Duration
	// DefaultStatus is the final status of a delivery no rule matches,
	// "200 OK" when "".
	DefaultStatus string
	// EventName is the event Raise sends, "E_IMC_MESSAGE" when "".
	EventName string
	// Events are published in addition to the captured events_list (which
	// includes E_IMC_MESSAGE); event_subscribe refuses other names.
	Events []string
	// Reliable sends event_stream events as requests with an id and waits
	// for the subscriber's reply (event_stream reliable_mode=1).
	Reliable bool
	// ReliableTimeout is how long Raise waits for that reply; 1 s when 0
	// (event_stream's timeout default).
	ReliableTimeout time.Duration
	// EventParam is the param naming the event in reliable mode,
	// "opensips_event" when "" (event_stream's event_param).
	EventParam string
	// Logger receives the fake's debug logs; nil discards.
	Logger *slog.Logger
}

// Server is a running fake OpenSIPS.
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	mi        *net.UDPConn
	miAddr    netip.AddrPort
	miDone    chan struct{} // closed when the MI read loop of mi exits
	gen       int           // bumped by Restart: replies of older transactions are dropped
	down      bool
	closed    bool
	published []string
	subs      []*Subscription // newest first
	rules     map[string]rule
	handlers  map[string]Handler
	evconns   map[string]*eventConn
	evUDP     *net.UDPConn
	rec       recorder
	txSeq     uint64
	replay    map[string][]byte // ReplayCaptured: request bytes -> reply bytes
	silent    bool              // SetSilent: record, never answer

	wg sync.WaitGroup
}

// Start binds the MI socket and starts serving.
func Start(opts Options) (*Server, error) {
	if opts.MIAddr == "" {
		opts.MIAddr = "127.0.0.1:0"
	}
	if opts.FrTimeout <= 0 {
		opts.FrTimeout = 300 * time.Millisecond
	}
	if opts.DefaultStatus == "" {
		opts.DefaultStatus = "200 OK"
	}
	if opts.EventName == "" {
		opts.EventName = "E_IMC_MESSAGE"
	}
	if opts.ReliableTimeout <= 0 {
		opts.ReliableTimeout = time.Second
	}
	if opts.EventParam == "" {
		opts.EventParam = "opensips_event"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		opts:      opts,
		log:       log.With("system", "fake-opensips"),
		published: append(append([]string(nil), capturedEvents...), opts.Events...),
		rules:     make(map[string]rule),
		handlers:  make(map[string]Handler),
		evconns:   make(map[string]*eventConn),
	}
	s.rec.init()
	ap, err := netip.ParseAddrPort(opts.MIAddr)
	if err != nil {
		return nil, fmt.Errorf("opensipstest: MIAddr %q: %w", opts.MIAddr, err)
	}
	mi, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	evUDP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		mi.Close()
		return nil, err
	}
	_ = evUDP.SetWriteBuffer(4 << 20)
	s.evUDP = evUDP
	s.miAddr = mi.LocalAddr().(*net.UDPAddr).AddrPort()
	s.mu.Lock()
	s.serveMI(mi)
	s.mu.Unlock()
	return s, nil
}

// MIAddr returns the mi_datagram address, "127.0.0.1:port".
func (s *Server) MIAddr() string { return s.miAddr.String() }

// MISocket returns the mi_datagram address as imcd's configuration writes
// it, "udp:127.0.0.1:port".
func (s *Server) MISocket() string { return "udp:" + s.miAddr.String() }

// serveMI starts the read loop of mi. Called with s.mu held or before s is
// shared.
func (s *Server) serveMI(mi *net.UDPConn) {
	_ = mi.SetReadBuffer(4 << 20)
	s.mi = mi
	done := make(chan struct{})
	s.miDone = done
	gen := s.gen
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		s.readMI(mi, gen)
	}()
}

// Down closes the MI socket and every event connection, as if OpenSIPS
// stopped: MI requests then meet a closed port. Subscriptions are kept until
// Up (use Restart to lose them).
func (s *Server) Down() {
	s.mu.Lock()
	if s.down || s.closed {
		s.mu.Unlock()
		return
	}
	s.down = true
	s.gen++
	mi, done := s.mi, s.miDone
	conns := s.evconns
	s.evconns = make(map[string]*eventConn)
	s.mu.Unlock()
	mi.Close()
	<-done
	for _, c := range conns {
		c.close()
	}
}

// Up binds the MI address again after Down.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down || s.closed {
		return nil
	}
	var (
		mi  *net.UDPConn
		err error
	)
	// The port was just released; retry briefly in case the kernel lags.
	for range 50 {
		mi, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(s.miAddr))
		if err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("opensipstest: rebinding %s: %w", s.miAddr, err)
	}
	s.down = false
	s.serveMI(mi)
	return nil
}

// Restart simulates an OpenSIPS restart: the MI socket is closed and bound
// again on the same port, every event connection is closed, pending
// t_uac_dlg replies are never sent, and every subscription is forgotten
// (OpenSIPS keeps them in memory only). Rules and records are kept.
func (s *Server) Restart() error {
	s.Down()
	s.mu.Lock()
	s.subs = nil
	s.mu.Unlock()
	s.rec.notify()
	return s.Up()
}

// Close stops the fake. Safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.gen++
	mi := s.mi
	conns := s.evconns
	s.evconns = map[string]*eventConn{}
	s.mu.Unlock()
	mi.Close()
	s.evUDP.Close()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return nil
}

// Handler answers a custom MI command: it gets the raw params (nil when
// absent) and returns the encoded result, or an error object.
type Handler func(params []byte) (result []byte, err *jsonrpc.Error)

// Handle installs h for MI method (replacing a built-in one), so that tests
// can check pass-through of arbitrary commands.
func (s *Server) Handle(method string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[method] = h
}

// sendMI writes one reply datagram from the MI socket, unless the server was
// restarted (gen changed) or closed since the request came in.
func (s *Server) sendMI(gen int, to netip.AddrPort, b []byte) {
	s.mu.Lock()
	mi, ok := s.mi, gen == s.gen && !s.closed && !s.down
	s.mu.Unlock()
	if !ok {
		return
	}
	if _, err := mi.WriteToUDPAddrPort(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("MI reply not sent", "err", err)
	}
}

// WaitSubscribed waits until socket is subscribed to event.
func (s *Server) WaitSubscribed(ctx context.Context, event, socket string) error {
	for {
		ch := s.rec.changed()
		if s.subscribed(event, socket) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("opensipstest: %s not subscribed to %s: %w", socket, event, ctx.Err())
		case <-ch:
		case <-time.After(50 * time.Millisecond): // expiry is time-driven
		}
	}
}

func (s *Server) subscribed(event, socket string) bool {
	for _, sub := range s.Subscriptions(event) {
		if sub.Socket == socket {
			return true
		}
	}
	return false
}
