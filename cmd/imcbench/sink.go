package main

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// sinkBuffer is SO_RCVBUF/SO_SNDBUF of the sink's socket (the kernel caps it
// at net.core.rmem_max / wmem_max).
const sinkBuffer = 8 << 20

// clock gives every timestamp of a run as nanoseconds since one base, so the
// generator's send times and the sink's receive times compare directly.
type clock struct{ base time.Time }

func (c clock) now() int64 { return int64(time.Since(c.base)) }

// sink plays OpenSIPS's mi_datagram for imcd: it answers event_subscribe
// (and evi:subscribe) with "OK", answers every t_uac_dlg with a final
// 200 OK after delay, and counts the t_uac_dlg requests. It does not parse
// them: the method is recognised by its prefix and the id read at the end,
// which keeps the sink's cost per delivery far below imcd's.
//
// One goroutine reads and answers; with a delay a second one sends the
// delayed answers from a FIFO queue (the delay is the same for every
// request, so the queue is in due order: no goroutine or timer per request).
type sink struct {
	conn  *net.UDPConn
	delay time.Duration
	full  bool // answer with the reply's headers in "Message", as OpenSIPS does
	clk   clock

	delivered  atomic.Int64 // t_uac_dlg requests received
	dead       atomic.Int64 // of which to members who never answer (model)
	dropped    atomic.Int64 // requests the modelled receive buffer dropped
	subscribes atomic.Int64
	unknown    atomic.Int64 // other requests, answered "Method not found"
	rec        atomic.Pointer[recorder]
	run        atomic.Uint32 // run id of the recorder's Call-IDs

	mu          sync.Mutex
	eventSocket string // the socket of the last event_subscribe

	delayed chan delayedReply
	wg      sync.WaitGroup

	// model, when set, makes the sink an OpenSIPS under load (sinkmodel.go).
	model    *opensipsModel
	queue    chan queuedRequest // the modelled MI receive buffer
	timeouts chan delayedReply  // 408s to members who never answer, in due order
	deadURI  []byte             // `"ruri":"sip:<model.deadPrefix>`
}

type delayedReply struct {
	due int64
	id  uint64
	to  netip.AddrPort
}

// startSink opens the sink on a free loopback port and starts answering,
// after delay, with a bare 200 OK status or, when full, with the Message
// OpenSIPS adds (the 200's headers, about 250 bytes).
func startSink(delay time.Duration, full bool, clk clock) (*sink, error) {
	return startModelSink(delay, full, clk, nil)
}

// startModelSink is startSink with an OpenSIPS model (nil: none).
func startModelSink(delay time.Duration, full bool, clk clock, m *opensipsModel) (*sink, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(sinkBuffer)
	_ = conn.SetWriteBuffer(sinkBuffer)
	s := &sink{conn: conn, delay: delay, full: full, clk: clk}
	if m != nil {
		s.startModel(m)
	}
	if delay > 0 {
		s.delayed = make(chan delayedReply, 1<<20)
		s.wg.Add(1)
		go s.sendDelayed()
	}
	s.wg.Add(1)
	go s.readLoop()
	return s, nil
}

// addr returns the sink's socket as imcd's opensips_mi wants it.
func (s *sink) addr() string { return "udp:" + s.conn.LocalAddr().String() }

// subscribedSocket returns the event socket imcd subscribed last, "" if none.
func (s *sink) subscribedSocket() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eventSocket
}

func (s *sink) close() {
	s.conn.Close()
	if s.delayed != nil {
		close(s.delayed)
	}
	if s.queue != nil {
		close(s.queue)
		close(s.timeouts)
	}
	s.wg.Wait()
}

func (s *sink) readLoop() {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	out := make([]byte, 0, 256)
	var p fastjson.Parser
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := buf[:n]
		if s.queue != nil {
			// The modelled OpenSIPS: what its socket's buffer takes is
			// served later, at its pace; what it has no room for is lost.
			select {
			case s.queue <- queuedRequest{b: append([]byte(nil), b...), from: from}:
				s.arrived(b)
			default:
				s.dropped.Add(1)
			}
			continue
		}
		s.arrived(b)
		out = s.serve(out[:0], &p, b, from)
	}
}

// arrived counts a request that reached OpenSIPS's MI socket and, for a
// t_uac_dlg to a member who answers, notes it in the recorder.
func (s *sink) arrived(b []byte) {
	if !isUAC(b) {
		return
	}
	s.delivered.Add(1)
	if s.deadURI != nil && bytes.Contains(b, s.deadURI) {
		s.dead.Add(1)
		return
	}
	if rec := s.rec.Load(); rec != nil {
		if seq, ok := eventSeq(b, s.run.Load()); ok {
			rec.note(seq, s.clk.now())
		}
	}
}

// serve answers one request (out is scratch) and returns the scratch.
func (s *sink) serve(out []byte, p *fastjson.Parser, b []byte, from netip.AddrPort) []byte {
	if !isUAC(b) {
		out = s.answerOther(out[:0], p, b)
		if len(out) > 0 {
			_, _ = s.conn.WriteToUDPAddrPort(out, from)
		}
		return out
	}
	id, ok := trailingID(b)
	if !ok {
		return out // imcd always sends a numeric id; nothing to answer
	}
	if s.deadURI != nil && bytes.Contains(b, s.deadURI) {
		select {
		case s.timeouts <- delayedReply{due: s.clk.now() + int64(s.model.frTimeout), id: id, to: from}:
		default:
		}
		return out
	}
	if s.delay > 0 {
		select {
		case s.delayed <- delayedReply{due: s.clk.now() + int64(s.delay), id: id, to: from}:
		default: // a million answers pending: let imcd time this one out
		}
		return out
	}
	out = s.appendAnswer(out[:0], id)
	_, _ = s.conn.WriteToUDPAddrPort(out, from)
	return out
}

func (s *sink) appendAnswer(dst []byte, id uint64) []byte {
	if s.full {
		return appendFullOK(dst, id)
	}
	return appendOK(dst, id)
}

// sendDelayed sends each delayed answer when it is due.
func (s *sink) sendDelayed() {
	defer s.wg.Done()
	out := make([]byte, 0, 128)
	for r := range s.delayed {
		if wait := r.due - s.clk.now(); wait > 0 {
			time.Sleep(time.Duration(wait))
		}
		out = s.appendAnswer(out[:0], r.id)
		if _, err := s.conn.WriteToUDPAddrPort(out, r.to); errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// answerOther answers an MI request that is not a t_uac_dlg: event
// subscriptions get "OK", anything else "Method not found". Replies to
// requests without an id are not sent, as OpenSIPS does.
func (s *sink) answerOther(dst []byte, p *fastjson.Parser, b []byte) []byte {
	m, err := jsonrpc.Decode(p, b)
	if err != nil || !m.IsRequest() || m.ID == nil {
		return dst
	}
	id := jsonrpc.AppendID(nil, m.ID)
	switch string(m.Method) {
	case "event_subscribe", "evi:subscribe":
		s.subscribes.Add(1)
		if m.Params != nil {
			if sock := m.Params.GetStringBytes("socket"); sock != nil {
				s.mu.Lock()
				s.eventSocket = string(sock)
				s.mu.Unlock()
			}
		}
		return jsonrpc.AppendResult(dst, id, []byte(`"OK"`))
	default:
		s.unknown.Add(1)
		return jsonrpc.AppendError(dst, id, &jsonrpc.Error{Code: -32601, Message: "Method not found"})
	}
}

// recorder keeps, per event of one run, when it was sent and when its first
// and last delivery reached the sink (nanoseconds of the run's clock), and
// how many deliveries it had. The generator writes sent, the sink the rest;
// all through atomics, read once both have stopped.
type recorder struct {
	sent  []atomic.Int64
	first []atomic.Int64
	last  []atomic.Int64
	count []atomic.Int32
	// done, when not nil, receives the seq of each event at its first
	// delivery (commands: the generator's completions).
	done chan uint64
}

func newRecorder(n int, withDone bool) *recorder {
	r := &recorder{sent: make([]atomic.Int64, n), first: make([]atomic.Int64, n),
		last: make([]atomic.Int64, n), count: make([]atomic.Int32, n)}
	if withDone {
		r.done = make(chan uint64, n)
	}
	return r
}

func (r *recorder) note(seq uint64, t int64) {
	if seq >= uint64(len(r.first)) {
		return
	}
	if r.first[seq].CompareAndSwap(0, t) && r.done != nil {
		select {
		case r.done <- seq:
		default:
		}
	}
	r.last[seq].Store(t)
	r.count[seq].Add(1)
}

// complete reports how many of the first n events had want deliveries.
func (r *recorder) complete(n, want int) int {
	c := 0
	for i := range min(n, len(r.count)) {
		if int(r.count[i].Load()) >= want {
			c++
		}
	}
	return c
}

// total returns the deliveries noted for the first n events.
func (r *recorder) total(n int) int {
	t := 0
	for i := range min(n, len(r.count)) {
		t += int(r.count[i].Load())
	}
	return t
}

// latencies returns event → first and event → last delivery of the first n
// events that had all want deliveries, and how many did not.
func (r *recorder) latencies(n, want int) (first, last []time.Duration, incomplete int) {
	n = min(n, len(r.sent))
	first = make([]time.Duration, 0, n)
	last = make([]time.Duration, 0, n)
	for i := range n {
		sent := r.sent[i].Load()
		if sent == 0 || int(r.count[i].Load()) < want {
			incomplete++
			continue
		}
		first = append(first, time.Duration(r.first[i].Load()-sent))
		last = append(last, time.Duration(r.last[i].Load()-sent))
	}
	return first, last, incomplete
}

// attach makes the sink record the deliveries of run into r (nil stops).
func (s *sink) attach(r *recorder, run uint32) {
	s.run.Store(run)
	s.rec.Store(r)
}
