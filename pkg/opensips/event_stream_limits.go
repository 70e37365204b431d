package opensips

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// The bounds of the event_stream server (docs/security.md): OpenSIPS opens
// a handful of connections and writes each event at once, so anything
// beyond them is a local process holding memory and goroutines.
const (
	// DefaultMaxConns is how many event_stream connections may be open at
	// once: one per OpenSIPS node and some left over from restarts.
	DefaultMaxConns = 16
	// DefaultFrameTimeout is how long a frame may take from its first byte
	// to its last. OpenSIPS writes an event in one write.
	DefaultFrameTimeout = 5 * time.Second
)

// What EventStreamServer does with a connection beyond MaxConns
// (EventStreamServer.AtMaxConns).
const (
	// AtMaxRefuse closes the new connection: those open stay, OpenSIPS's
	// own among them.
	AtMaxRefuse = "refuse"
	// AtMaxCloseIdle closes the connection idle the longest (no frame in
	// progress; the least recent frame) to make room for the new one, and
	// refuses the new one when every connection is in the middle of a
	// frame. It suits an OpenSIPS whose old connections may linger after
	// it restarted.
	AtMaxCloseIdle = "close_idle"
)

var (
	// ErrTooManyConns: an event_stream connection beyond MaxConns was
	// refused, or an idle one closed to make room.
	ErrTooManyConns = errors.New("opensips: too many event_stream connections")
	// ErrFrameTimeout: an event_stream frame was begun and not finished
	// within FrameTimeout; the connection is closed.
	ErrFrameTimeout = errors.New("opensips: event_stream frame not finished in time")
)

// connState is what the admission of a new connection looks at in one
// that is open; the read loop keeps it.
type connState struct {
	frameSince atomic.Int64 // unix nanos when the frame in progress began; 0 between frames
	lastRead   atomic.Int64 // unix nanos when bytes last came (or the connection opened)
	evicted    atomic.Bool  // closed to make room: no longer counted
}

// admit decides, with s.mu held, whether a new connection may be served:
// under MaxConns it may; at it, AtMaxRefuse says no, AtMaxCloseIdle closes
// the idle connection that has sent nothing for the longest (reported
// through the returned victim, closed by the caller after unlocking) and
// says yes.
func (s *EventStreamServer) admit() (ok bool, victim *streamConn) {
	open := 0
	var idlest *streamConn
	for c := range s.conns {
		if c.state.evicted.Load() {
			continue
		}
		open++
		if c.state.frameSince.Load() != 0 {
			continue
		}
		if idlest == nil || c.state.lastRead.Load() < idlest.state.lastRead.Load() {
			idlest = c
		}
	}
	if open < s.MaxConns {
		return true, nil
	}
	if s.AtMaxConns != AtMaxCloseIdle || idlest == nil {
		return false, nil
	}
	idlest.state.evicted.Store(true)
	return true, idlest
}

// limitConns applies MaxConns to the connection c just accepted; false
// when c was refused (and closed). A connection closed to make room is
// counted and logged like a refused one.
func (s *EventStreamServer) limitConns(c net.Conn) bool {
	s.mu.Lock()
	ok, victim := s.admit()
	s.mu.Unlock()
	if victim != nil {
		s.in.refused(ResultTooManyConns, fmt.Errorf("%w (%d): closed the one idle the longest to make room (event_at_max_connections = %s)",
			ErrTooManyConns, s.MaxConns, AtMaxCloseIdle), "", victim.remote)
		victim.conn.Close()
	}
	if !ok {
		s.in.refused(ResultTooManyConns, fmt.Errorf("%w (%d): new connection refused (event_max_connections)", ErrTooManyConns, s.MaxConns),
			"", c.RemoteAddr().String())
		c.Close()
	}
	return ok
}

// Connections returns how many event_stream connections are open and, of
// them, how many are in the middle of a frame.
func (s *EventStreamServer) Connections() (open, midFrame int) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.evicted.Load() {
			continue
		}
		open++
		if c.state.frameSince.Load() != 0 {
			midFrame++
		}
	}
	return open, midFrame
}

// frameClock is what a connection's splitter reads through: it gives the
// frame in progress FrameTimeout from its first byte (a read deadline),
// none between frames (OpenSIPS keeps its connection open and quiet
// between events), and turns the deadline's expiry into ErrFrameTimeout.
type frameClock struct {
	s       *EventStreamServer
	c       *streamConn
	sp      *FrameSplitter
	timeout time.Duration
	armed   bool // a deadline is set for the frame in progress
}

func (r *frameClock) Read(b []byte) (int, error) {
	switch inFrame := r.sp.InFrame(); {
	case inFrame && !r.armed:
		now := time.Now()
		r.armed = true
		r.c.state.frameSince.Store(now.UnixNano())
		_ = r.c.conn.SetReadDeadline(now.Add(r.timeout))
	case !inFrame && r.armed:
		r.armed = false
		r.c.state.frameSince.Store(0)
		_ = r.c.conn.SetReadDeadline(time.Time{})
	}
	// StopIntake sets a deadline in the past to end this loop; a deadline
	// set above after it would undo it, hence the check after setting.
	if r.s.intakeStopped.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := r.c.r.Read(b)
	if n > 0 {
		r.c.state.lastRead.Store(time.Now().UnixNano())
	}
	if err != nil && r.armed && errors.Is(err, os.ErrDeadlineExceeded) && !r.s.intakeStopped.Load() {
		err = fmt.Errorf("%w (%s, event_frame_timeout)", ErrFrameTimeout, r.timeout)
	}
	return n, err
}
