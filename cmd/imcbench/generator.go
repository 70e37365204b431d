package main

import (
	"net"
	"time"
)

// sender writes events to imcd as OpenSIPS does: on one event_stream TCP
// connection, objects back to back with no delimiter, or one event_datagram
// per event. Events added between two flushes go out in one write on a
// stream (OpenSIPS's TCP segmentation is arbitrary too) and one datagram each
// on UDP.
type sender struct {
	stream bool
	conn   net.Conn
	buf    []byte
	sent   uint64 // events written
}

// maxStreamBatch is the most bytes a stream write carries.
const maxStreamBatch = 64 << 10

func dialSender(transport, addr string) (*sender, error) {
	if transport == "stream" {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		tc := c.(*net.TCPConn)
		_ = tc.SetWriteBuffer(4 << 20)
		return &sender{stream: true, conn: c, buf: make([]byte, 0, maxStreamBatch+4096)}, nil
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.(*net.UDPConn).SetWriteBuffer(4 << 20)
	return &sender{conn: c, buf: make([]byte, 0, 4096)}, nil
}

// next returns the buffer to append one event to; commit takes it.
func (s *sender) next() []byte {
	if s.stream {
		return s.buf
	}
	return s.buf[:0]
}

// commit records the event appended to the buffer next returned: on a
// stream it waits for flush (or goes now when the batch is full), a
// datagram leaves at once.
func (s *sender) commit(b []byte) error {
	s.sent++
	if !s.stream {
		s.buf = b[:0]
		_, err := s.conn.Write(b)
		return err
	}
	s.buf = b
	if len(s.buf) >= maxStreamBatch {
		return s.flush()
	}
	return nil
}

// flush writes the events batched on a stream.
func (s *sender) flush() error {
	if !s.stream || len(s.buf) == 0 {
		return nil
	}
	_, err := s.conn.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}

func (s *sender) close() error {
	_ = s.flush()
	return s.conn.Close()
}
