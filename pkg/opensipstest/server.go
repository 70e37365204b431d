package opensipstest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Server is a running fake OpenSIPS.
type Server struct {
	opts    Options
	log     *slog.Logger
	txLimit int // MaxTransactions, or what fits in ShmSize

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

	miq  *miQueue      // the MI socket's receive buffer
	tx   *txTable      // t_uac_dlg transactions in progress
	ul   location      // usrloc's table
	quit chan struct{} // closed by Close: stops the fixed goroutines

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
	if opts.RoomPrefix == "" {
		opts.RoomPrefix = "chat-"
	}
	if opts.ReliableTimeout <= 0 {
		opts.ReliableTimeout = time.Second
	}
	if opts.EventParam == "" {
		opts.EventParam = "opensips_event"
	}
	if opts.ShmSize <= 0 {
		opts.ShmSize = 1 << 30
	}
	if opts.ShmBase <= 0 {
		opts.ShmBase = 4 << 20
	}
	if opts.ShmPerTransaction <= 0 {
		opts.ShmPerTransaction = 8 << 10
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:      opts,
		log:       log.With(logkey.System, logkey.SystemFakeOpenSIPS),
		published: append(append([]string(nil), capturedEvents...), opts.Events...),
		rules:     make(map[string]rule),
		handlers:  make(map[string]Handler),
		evconns:   make(map[string]*eventConn),
		miq:       newMIQueue(opts.MIRecvBuffer, opts.MIRecvBufferBytes),
		tx:        newTxTable(),
		quit:      make(chan struct{}),
	}
	s.rec.init()
	s.ul.init()
	s.txLimit = s.opts.MaxTransactions
	if fit := int(max(0, s.opts.ShmSize-s.opts.ShmBase) / s.opts.ShmPerTransaction); s.txLimit <= 0 || fit < s.txLimit {
		s.txLimit = max(fit, 1)
	}
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
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.serveMIQueue()
	}()
	go func() {
		defer s.wg.Done()
		s.runTransactions()
	}()
	if opts.UsrlocTimer > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runUsrlocTimer(opts.UsrlocTimer)
		}()
	}
	return s, nil
}

// MIAddr returns the mi_datagram address, "127.0.0.1:port".
func (s *Server) MIAddr() string { return s.miAddr.String() }

// MISocket returns the mi_datagram address as imcd's configuration writes
// it, "udp:127.0.0.1:port".
func (s *Server) MISocket() string { return "udp:" + s.miAddr.String() }

// serveMI starts the read loop of mi, which fills the receive buffer that
// serveMIQueue drains. Called with s.mu held or before s is shared.
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
// stopped: MI requests then meet a closed port, queued requests and
// transactions in progress are lost. Subscriptions and registrations are
// kept until Up (use Restart to lose them).
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
	s.miq.clear()
	s.tx.reset()
	for _, c := range conns {
		c.close()
	}
	s.rec.notify()
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
// again on the same port (what waited in its receive buffer is lost), every
// event connection is closed, transactions in progress vanish and their
// replies are never sent, every subscription is forgotten (OpenSIPS keeps
// them in memory only), and so is the location table (usrloc in
// single-instance-no-db mode). Rules and records are kept; no usrloc event
// is raised for the lost registrations.
func (s *Server) Restart() error {
	s.Down()
	s.mu.Lock()
	s.subs = nil
	s.mu.Unlock()
	s.ul.clear()
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
	close(s.quit)
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
		s.log.Debug("MI reply not sent", logkey.Err, err)
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
