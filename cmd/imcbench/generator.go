package main

import (
	"context"
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

// paced calls send(seq) for seq from 0 to n-1, open loop at rate per
// second by the generator's clock: what is due goes out at once (a late
// turn is caught up on, not skipped or slowed down), then flush, when not
// nil, then a sleep until the next is due. It stops early when ctx ends.
func (b *bench) paced(ctx context.Context, n, rate int, send func(seq int) error, flush func() error) error {
	interval := float64(time.Second) / float64(rate)
	t0 := b.clk.now()
	for seq := 0; seq < n && ctx.Err() == nil; {
		due := min(int(float64(b.clk.now()-t0)/interval)+1, n)
		for ; seq < due; seq++ {
			if err := send(seq); err != nil {
				return err
			}
		}
		if flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		if wait := t0 + int64(float64(seq)*interval) - b.clk.now(); wait > 0 {
			time.Sleep(time.Duration(wait))
		}
	}
	return nil
}
