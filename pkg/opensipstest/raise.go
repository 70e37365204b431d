package opensipstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// MaxDatagramEvent is the largest event event_datagram sends; a larger one
// fails with EMSGSIZE and is not sent at all (events/datagram/16).
const MaxDatagramEvent = 65507

// ErrMessageTooLong is returned by Raise for a datagram subscriber when the
// event is over MaxDatagramEvent bytes, as OpenSIPS logs "Cannot raise
// datagram event due to 90:Message too long".
var ErrMessageTooLong = errors.New("opensipstest: cannot raise datagram event: message too long")

// Event is one E_IMC_MESSAGE with the 11 params of the shipped script, in
// the order it emits them.
type Event struct {
	From, FromTag, To, RURI, CallID, CSeq, SrcIP string
	SrcPort                                      int
	Proto, CType, Body                           string
}

// NewEvent returns an event from a UA at 127.0.0.1:5071 over UDP, with a
// fresh from_tag and Call-ID, To = ruri, CSeq "1", Content-Type text/plain.
func NewEvent(from, ruri, body string) Event {
	return Event{
		From:    from,
		FromTag: strconv.FormatUint(rand.Uint64()&0xffffffff, 16),
		To:      ruri,
		RURI:    ruri,
		CallID:  strconv.FormatUint(rand.Uint64(), 16) + "@lab",
		CSeq:    "1",
		SrcIP:   "127.0.0.1",
		SrcPort: 5071,
		Proto:   "udp",
		CType:   "text/plain",
		Body:    body,
	}
}

// AppendJSON appends e as OpenSIPS sends it: compact JSON, the params in
// script order, cseq a string and src_port a number, strings escaped like
// cJSON and cut at a NUL byte (they are C strings). With id > 0 it is an
// event_stream reliable-mode request: "id" first and the event name in
// eventParam.
func (e *Event) AppendJSON(dst []byte, name string, id int64, eventParam string) []byte {
	return appendEvent(dst, name, id, eventParam, e.appendParams)
}

// appendEvent appends one event notification as OpenSIPS's event_datagram
// and event_stream write it, whatever the event: params appends the
// members of the params object.
func appendEvent(dst []byte, name string, id int64, eventParam string, params func([]byte) []byte) []byte {
	if id > 0 {
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendInt(dst, id, 10)
		dst = append(dst, `,"jsonrpc":"2.0","method":`...)
	} else {
		dst = append(dst, `{"jsonrpc":"2.0","method":`...)
	}
	dst = appendCString(dst, name)
	dst = append(dst, `,"params":{`...)
	if id > 0 {
		dst = appendCString(dst, eventParam)
		dst = append(dst, ':')
		dst = appendCString(dst, name)
		dst = append(dst, ',')
	}
	dst = params(dst)
	return append(dst, "}}"...)
}

// appendParams appends e's params in script order.
func (e *Event) appendParams(dst []byte) []byte {
	str := func(k, v string) {
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, `":`...)
		dst = appendCString(dst, v)
	}
	str("from", e.From)
	dst = append(dst, ',')
	str("from_tag", e.FromTag)
	dst = append(dst, ',')
	str("to", e.To)
	dst = append(dst, ',')
	str("ruri", e.RURI)
	dst = append(dst, ',')
	str("callid", e.CallID)
	dst = append(dst, ',')
	str("cseq", e.CSeq)
	dst = append(dst, ',')
	str("src_ip", e.SrcIP)
	dst = append(dst, `,"src_port":`...)
	dst = strconv.AppendInt(dst, int64(e.SrcPort), 10)
	dst = append(dst, ',')
	str("proto", e.Proto)
	dst = append(dst, ',')
	str("ctype", e.CType)
	dst = append(dst, ',')
	str("body", e.Body)
	return dst
}

func appendCString(dst []byte, s string) []byte {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return jsonrpc.AppendString(dst, s)
}

// Raise sends ev to every live subscriber of Options.EventName, as OpenSIPS
// does: one datagram per udp:/unix: subscriber (refused with
// ErrMessageTooLong over MaxDatagramEvent bytes), and over the persistent
// connection of each tcp: subscriber (opened on first use, reopened when
// the peer closed it). In reliable mode it waits for each tcp subscriber's
// reply (up to ReliableTimeout) and returns them; they are also recorded
// (Replies). The error joins the failures of every subscriber.
func (s *Server) Raise(ev Event) ([]Reply, error) {
	return s.raise(s.opts.EventName, ev.appendParams)
}

// raise sends one event to every live subscriber of name, the way Raise
// documents.
func (s *Server) raise(name string, params func([]byte) []byte) ([]Reply, error) {
	var (
		replies []Reply
		errs    []error
	)
	for _, sub := range s.Subscriptions(name) {
		scheme, addr, _ := strings.Cut(sub.Socket, ":")
		switch scheme {
		case "udp", "unix":
			b := appendEvent(nil, name, 0, "", params)
			if len(b) > MaxDatagramEvent {
				errs = append(errs, fmt.Errorf("%s: %w (%d bytes)", sub.Socket, ErrMessageTooLong, len(b)))
				continue
			}
			if err := s.sendDatagram(scheme, addr, b); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", sub.Socket, err))
			}
		case "tcp":
			if !s.opts.Reliable {
				if err := s.sendStream(sub.Socket, appendEvent(nil, name, 0, "", params)); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			id := rand.Int64N(1<<31-1) + 1
			rp := s.sendReliable(sub.Socket, id, appendEvent(nil, name, id, s.opts.EventParam, params))
			s.rec.addReply(rp)
			replies = append(replies, rp)
			if rp.Err != nil {
				errs = append(errs, rp.Err)
			}
		}
	}
	return replies, errors.Join(errs...)
}

// RaiseRaw sends b as is to socket ("udp:host:port", "unix:/path" or
// "tcp:host:port", the latter over the persistent connection), whether or
// not it is subscribed.
func (s *Server) RaiseRaw(socket string, b []byte) error {
	scheme, addr, _ := strings.Cut(socket, ":")
	switch scheme {
	case "udp", "unix":
		return s.sendDatagram(scheme, addr, b)
	case "tcp":
		return s.sendStream(socket, b)
	}
	return fmt.Errorf("opensipstest: bad socket %q", socket)
}

func (s *Server) sendDatagram(scheme, addr string, b []byte) error {
	if scheme == "unix" {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(b)
		return err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	_, err = s.evUDP.WriteToUDP(b, ua)
	return err
}

// sendStream writes b on socket's connection, reconnecting once if the
// connection turns out to be dead.
func (s *Server) sendStream(socket string, b []byte) error {
	var err error
	for range 2 {
		var c *eventConn
		if c, err = s.eventConn(socket); err != nil {
			return err
		}
		if err = c.write(b); err == nil {
			return nil
		}
		c.close()
	}
	return fmt.Errorf("%s: %w", socket, err)
}

func (s *Server) sendReliable(socket string, id int64, b []byte) Reply {
	rp := Reply{Socket: socket, ID: id}
	c, err := s.eventConn(socket)
	if err != nil {
		rp.Err = err
		return rp
	}
	ch := c.expect(id)
	if err := c.write(b); err != nil {
		c.close()
		rp.Err = fmt.Errorf("%s: %w", socket, err)
		return rp
	}
	select {
	case raw, ok := <-ch:
		if !ok {
			rp.Err = fmt.Errorf("%s: connection closed before the reply", socket)
			return rp
		}
		rp.Raw = raw
	case <-time.After(s.opts.ReliableTimeout):
		c.forget(id)
		rp.Err = fmt.Errorf("%s: Handling JSON-RPC command [] timed out", socket)
	}
	return rp
}

// eventConn returns the live connection to a tcp: subscriber, dialling it
// when there is none.
func (s *Server) eventConn(socket string) (*eventConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("opensipstest: closed")
	}
	if c := s.evconns[socket]; c != nil && !c.isDead() {
		return c, nil
	}
	addr := strings.TrimPrefix(socket, "tcp:")
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, fmt.Errorf("stream_new_con: cannot connect to %s: %w", addr, err)
	}
	c := &eventConn{conn: conn, waiters: make(map[int64]chan []byte), dead: make(chan struct{})}
	s.evconns[socket] = c
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.read()
	}()
	return c, nil
}

// eventConn is the fake's side of one event_stream connection.
type eventConn struct {
	conn net.Conn
	wmu  sync.Mutex

	mu       sync.Mutex
	waiters  map[int64]chan []byte
	dead     chan struct{}
	deadOnce sync.Once
}

func (c *eventConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.isDead() {
		return net.ErrClosed
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

func (c *eventConn) expect(id int64) <-chan []byte {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.waiters[id] = ch
	c.mu.Unlock()
	return ch
}

func (c *eventConn) forget(id int64) {
	c.mu.Lock()
	delete(c.waiters, id)
	c.mu.Unlock()
}

func (c *eventConn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (c *eventConn) close() {
	c.deadOnce.Do(func() { close(c.dead) })
	c.conn.Close()
}

// read consumes what the subscriber sends: JSON-RPC replies, matched to the
// reliable-mode request they answer (anything else is discarded, as OpenSIPS
// does). It ends when the peer closes.
func (c *eventConn) read() {
	defer func() {
		c.close()
		c.mu.Lock()
		for id, ch := range c.waiters {
			close(ch)
			delete(c.waiters, id)
		}
		c.mu.Unlock()
	}()
	dec := json.NewDecoder(c.conn)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return
		}
		var env struct {
			ID json.Number `json:"id"`
		}
		if json.Unmarshal(raw, &env) != nil {
			continue
		}
		id, err := env.ID.Int64()
		if err != nil {
			continue
		}
		c.mu.Lock()
		ch := c.waiters[id]
		delete(c.waiters, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), raw...)
		}
	}
}
