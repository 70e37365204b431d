package opensips

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/rawio"
)

// MIClient defaults.
const (
	// DefaultMITimeout waits for a t_uac_dlg reply: OpenSIPS answers when
	// the transaction ends, at the latest after tm's fr_timeout (5 s in the
	// shipped scripts/opensips/imcd.cfg), so 3 s more means the MI request
	// or its reply was lost. Raise it with fr_timeout.
	DefaultMITimeout    = 8 * time.Second
	DefaultCallTimeout  = 2 * time.Second
	DefaultSocketBuffer = 4 << 20
	DefaultPollEvery    = 10 * time.Millisecond
)

// readBatch is the most reply datagrams one read takes.
const readBatch = 16

// maxReply is the largest MI reply datagram read.
const maxReply = 65536

// MIClient talks JSON-RPC to OpenSIPS's mi_datagram over one socket: many
// requests in flight at once, replies matched by id (they come back out of
// order, when each SIP transaction ends). Send queues one notice as
// t_uac_dlg and Flush writes what is queued (pkg/delivery decides when,
// and how many are in flight); Call makes synchronous calls. Set the
// fields, Open, then Close.
//
// What a delivery costs imcd is mostly wake-ups and system calls, not
// JSON (docs/benchmarks.md), so over UDP nothing waits on the socket for
// each reply: replies are read in batches (recvmmsg, with the kernel's
// time of arrival, which is what a reply's latency is measured from) by
// Poll, which the scheduler calls every time it runs anyway, and, while
// requests are in flight and nobody polled for PollEvery, by the client's
// own poller. Flush writes a round of requests with one sendmmsg. Over a
// unix socket the reader waits for each reply.
//
// Goroutines: one reader (the poller, or the unix socket's reader), one
// reaper (times out requests).
type MIClient struct {
	// Addr is OpenSIPS's mi_datagram socket: "udp:host:port", "host:port"
	// or "unix:/path".
	Addr string
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger
	// Observer counts delivery outcomes; nil means NopObserver.
	Observer Observer
	// Timeout is how long a t_uac_dlg reply is awaited before the request
	// is counted lost (delivery.FaultLost: outcome unknown);
	// DefaultMITimeout when 0. It must exceed tm's fr_timeout.
	Timeout time.Duration
	// CallTimeout bounds Call and Forward when their context has no sooner
	// deadline; DefaultCallTimeout when 0.
	CallTimeout time.Duration
	// ReadBuffer and WriteBuffer set SO_RCVBUF/SO_SNDBUF;
	// DefaultSocketBuffer when 0, left to the kernel when < 0.
	ReadBuffer, WriteBuffer int
	// NextHop is passed as next_hop (the outbound_proxy); "" sends none.
	NextHop string
	// NextHopInOrder says NextHop relays a member's MESSAGEs in the order
	// it takes them (an OpenSIPS socket with one worker: proxy_in_order).
	NextHopInOrder bool
	// Routes, when set, sends a member's MESSAGEs straight to their
	// contact when it knows it (delivery_path = contact); the others go
	// to their address of record through NextHop.
	Routes Router
	// PollEvery is how long replies may wait to be read while requests
	// are in flight and nobody else polls (UDP); DefaultPollEvery when
	// 0. It delays what a reply tells the scheduler, never a MESSAGE, and
	// not the latency measured (the kernel's arrival time is).
	PollEvery time.Duration
	// LocalPath is the unix socket imcd binds to receive replies when Addr
	// is a unix socket; by default a file in the system's temp directory.
	// It is created mode 0666 (OpenSIPS may run as another user; replies
	// are accepted only from Addr) and removed on Close.
	LocalPath string

	log       *slog.Logger
	obs       Observer
	addr      miAddr
	unixRaddr *net.UnixAddr
	// The socket: over UDP a connected socket outside the Go runtime's
	// poller (replies wake nobody: Poll reads them), over a unix socket
	// one bound to localPath, read as replies come.
	udp       *rawio.Socket
	unix      *net.UnixConn
	localPath string
	tagPrefix string

	stateMu sync.RWMutex // guards opened/closed against Send and Call
	opened  bool
	closed  bool

	mu       sync.Mutex
	inflight map[uint64]*pending
	sends    atomic.Int64  // Send requests in flight
	kick     chan struct{} // the first request of a busy spell wakes the poller

	// Poll's state, under readMu: one reader at a time.
	readMu   sync.Mutex
	rbufs    [][]byte
	rsizes   []int
	rstamps  []time.Time
	rparser  fastjson.Parser
	rdone    []finished
	lastPoll atomic.Int64 // unix nanoseconds of the last Poll
	nextID   atomic.Uint64
	bufs     sync.Pool
	sendPool sync.Pool // *pending of Send

	// queued are the requests Send encoded and Flush has not written.
	queueMu sync.Mutex
	queued  []queuedRequest
	flushMu sync.Mutex      // one Flush at a time
	writing []queuedRequest // Flush's own copy of queued
	msgs    [][]byte        // Flush's sendmmsg vector

	unreachLog logging.Limit
	replyLog   logging.Limit

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// pending is one request in flight.
type pending struct {
	id       uint64
	sent     time.Time      // Send
	deadline time.Time      // Send
	reply    chan callReply // Call
	// Send: onSent is called with tag; the pending comes from and
	// returns to sendPool.
	onSent delivery.Completion
	tag    uint64
	to     imc.URI // the member, and whether the request went to their
	direct bool    // contact (Routes) rather than through the proxy
}

// queuedRequest is one encoded request waiting for Flush.
type queuedRequest struct {
	id  uint64
	buf *[]byte // from bufs
}

// finished is a request taken out of the map with its outcome, to be
// reported (finish).
type finished struct {
	p *pending
	o delivery.Outcome
}

type callReply struct {
	result []byte
	err    error
}

// Open resolves Addr, opens the socket and starts the goroutines. OpenSIPS
// need not be up: requests made while it is down fail (ErrUnreachable or
// ErrTimeout) and the client keeps working when it comes back.
func (c *MIClient) Open(ctx context.Context) error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.opened || c.closed {
		return ErrClosed
	}
	c.log = logging.Child(c.Logger, logkey.SystemMIClient)
	if c.obs = c.Observer; c.obs == nil {
		c.obs = NopObserver{}
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultMITimeout
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = DefaultSocketBuffer
	}
	if c.WriteBuffer == 0 {
		c.WriteBuffer = DefaultSocketBuffer
	}
	if c.PollEvery <= 0 {
		c.PollEvery = DefaultPollEvery
	}
	a, err := parseMIAddr(c.Addr)
	if err != nil {
		return err
	}
	c.addr = a
	if a.network == "unixgram" {
		c.unixRaddr = &net.UnixAddr{Name: a.addr, Net: "unixgram"}
	}
	if err := c.dial(ctx); err != nil {
		return err
	}
	if c.udp != nil {
		if err := c.udp.EnableTimestamps(); err != nil {
			c.log.Debug("no kernel timestamps on the MI socket: latencies are measured when replies are read", logkey.Err, err)
		}
		c.rbufs = make([][]byte, readBatch)
		for i := range c.rbufs {
			c.rbufs[i] = make([]byte, maxReply)
		}
		c.rsizes, c.rstamps = make([]int, readBatch), make([]time.Time, readBatch)
	}
	c.kick = make(chan struct{}, 1)

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	c.tagPrefix = hex.EncodeToString(rnd[:]) + "-"
	c.inflight = make(map[uint64]*pending, 256)
	c.unreachLog.Interval = 10 * time.Second
	c.replyLog.Interval = 10 * time.Second
	c.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	c.sendPool.New = func() any { return new(pending) }

	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(2)
	go c.readLoop(runCtx)
	go c.reapLoop(runCtx)
	c.opened = true
	c.log.Info("MI client ready", logkey.Addr, c.Addr, logkey.Timeout, c.Timeout.String())
	return nil
}

// dial opens the socket towards OpenSIPS: a connected UDP socket (so the
// kernel reports "nothing listens" and filters replies by source), or a
// unix datagram socket bound to LocalPath (a fresh temporary path when "")
// so that OpenSIPS can answer.
func (c *MIClient) dial(ctx context.Context) error {
	if c.addr.network == "udp" {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", hostOf(c.addr.addr))
		if err != nil {
			return err
		}
		ua, err := net.ResolveUDPAddr("udp", c.addr.addr) // the port, by name or number
		if err != nil {
			return err
		}
		c.udp, err = rawio.DialUDP(netip.AddrPortFrom(ips[0], uint16(ua.Port)), c.ReadBuffer, c.WriteBuffer)
		return err
	}
	c.localPath = c.LocalPath
	if c.localPath == "" {
		c.localPath = tempSocketPath()
	}
	if fi, err := os.Lstat(c.localPath); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(c.localPath)
	}
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: c.localPath, Net: "unixgram"})
	if err != nil {
		return err
	}
	_ = os.Chmod(c.localPath, 0o666)
	if c.ReadBuffer > 0 {
		_ = uc.SetReadBuffer(c.ReadBuffer)
	}
	if c.WriteBuffer > 0 {
		_ = uc.SetWriteBuffer(c.WriteBuffer)
	}
	c.unix = uc
	return nil
}

// dialConn opens a socket of its own towards OpenSIPS for one forwarded
// request (Forward): a connected UDP socket, or a unix datagram socket
// bound to a fresh temporary path (local, to remove) so that OpenSIPS can
// answer.
func (c *MIClient) dialConn(ctx context.Context) (conn net.Conn, local string, err error) {
	if c.addr.network == "udp" {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "udp", c.addr.addr)
		return conn, "", err
	}
	local = tempSocketPath()
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"})
	if err != nil {
		return nil, "", err
	}
	_ = os.Chmod(local, 0o666)
	return uc, local, nil
}

// hostOf is the host of host:port.
func hostOf(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return h
}

// tempSocketPath returns a fresh path for a reply socket.
func tempSocketPath() string {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return filepath.Join(os.TempDir(), "imcd-mi-"+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:])+".sock")
}

// Close stops the client. Requests still in flight end with ErrClosed
// (delivery.FaultAborted). Safe to call more than once.
func (c *MIClient) Close() error {
	c.closeOnce.Do(func() {
		c.stateMu.Lock()
		wasOpen := c.opened
		c.closed = true
		c.stateMu.Unlock()
		if !wasOpen {
			return
		}
		c.cancel()
		c.closeSocket()
		c.wg.Wait()
		c.dropQueued()
		c.finish(c.takeAll(), abortedOutcome()) // no Send can add more: closed is set
		if c.localPath != "" {
			_ = os.Remove(c.localPath)
		}
	})
	return nil
}

// Pending returns the number of Send requests in flight.
func (c *MIClient) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.inflight {
		if p.reply == nil {
			n++
		}
	}
	return n
}

// Call sends one MI request and waits for its reply. params is the
// already-encoded params object (or array), nil for none. It returns the
// raw result JSON, a *jsonrpc.Error when OpenSIPS answered with an error,
// or an error wrapping ErrTimeout, ErrUnreachable or ErrClosed.
func (c *MIClient) Call(ctx context.Context, method string, params []byte) ([]byte, error) {
	if method == "" {
		return nil, fmt.Errorf("%w: empty method", ErrForbiddenRequest)
	}
	c.stateMu.RLock()
	if !c.opened || c.closed {
		c.stateMu.RUnlock()
		return nil, ErrClosed
	}
	id := c.nextID.Add(1)
	b := make([]byte, 0, 64+len(method)+len(params))
	b = append(b, `{"jsonrpc":"2.0","method":`...)
	b = jsonrpc.AppendString(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '}')
	p := &pending{id: id, reply: make(chan callReply, 1)}
	c.register(p)
	c.stateMu.RUnlock()

	if err := c.write(b); err != nil {
		c.sendFailed(id, err)
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, method, err)
	}
	t := time.NewTimer(c.CallTimeout)
	defer t.Stop()
	// A caller waits for this one reply: it reads it as soon as it comes
	// (Poll every millisecond; a unix socket's reader reads it anyway).
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case r := <-p.reply:
			return r.result, r.err
		case <-poll.C:
			c.Poll()
			continue
		case <-t.C:
			if c.take(id) != nil {
				return nil, fmt.Errorf("%w: %s after %v", ErrTimeout, method, c.CallTimeout)
			}
		case <-ctx.Done():
			if c.take(id) != nil {
				return nil, ctx.Err()
			}
		}
		r := <-p.reply // the reply won the race
		return r.result, r.err
	}
}

// register makes p findable by its id, and wakes the poller when p is
// the only request in flight (it sleeps while there is none).
func (c *MIClient) register(p *pending) {
	c.mu.Lock()
	c.inflight[p.id] = p
	first := len(c.inflight) == 1
	c.mu.Unlock()
	if p.reply == nil {
		c.sends.Add(1)
	}
	if first {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// idle reports whether no request is in flight.
func (c *MIClient) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight) == 0
}

// take removes and returns the request with id, nil if it is gone (already
// answered or timed out). Whoever takes a request completes it.
func (c *MIClient) take(id uint64) *pending {
	c.mu.Lock()
	p := c.inflight[id]
	if p != nil {
		delete(c.inflight, id)
	}
	c.mu.Unlock()
	if p != nil && p.reply == nil {
		c.sends.Add(-1)
	}
	return p
}

func (c *MIClient) takeAll() []*pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := make([]*pending, 0, len(c.inflight))
	for id, p := range c.inflight {
		all = append(all, p)
		delete(c.inflight, id)
		if p.reply == nil {
			c.sends.Add(-1)
		}
	}
	return all
}

// finish ends requests taken out of the map, all with outcome o.
func (c *MIClient) finish(ps []*pending, o delivery.Outcome) {
	for i, p := range ps {
		c.complete(p, o, i < len(ps)-1)
	}
}

// complete ends a request taken out of the map: it reports the outcome;
// more says that more outcomes follow at once (delivery.Completion).
func (c *MIClient) complete(p *pending, o delivery.Outcome, more bool) {
	if p.reply != nil {
		p.reply <- callReply{err: o.Err}
		return
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	c.obs.DeliveryDone(o.Class(), at.Sub(p.sent))
	c.endSend(p, o, more)
}

// write sends one datagram to OpenSIPS.
func (c *MIClient) write(b []byte) error {
	if c.unix != nil {
		_, err := c.unix.WriteToUnix(b, c.unixRaddr)
		return err
	}
	return c.udp.Write(b)
}

// closeSocket closes the socket to OpenSIPS.
func (c *MIClient) closeSocket() {
	if c.unix != nil {
		c.unix.Close()
		return
	}
	c.udp.Close()
}

// noteUnreachable logs, once per interval, that OpenSIPS cannot be reached.
func (c *MIClient) noteUnreachable(err error) {
	if ok, suppressed := c.unreachLog.Allow(time.Now()); ok {
		c.log.Warn("OpenSIPS MI unreachable", logkey.Addr, c.Addr, logkey.Err, err, logkey.Suppressed, suppressed)
	}
}
