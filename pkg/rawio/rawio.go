// Package rawio reads and writes imcd's busiest sockets (the MI socket to
// OpenSIPS, the event connections) with raw system calls on their
// non-blocking descriptors, in batches where the kernel allows
// (recvmmsg, sendmmsg).
//
// Why not net.Conn. Every system call Go makes through the net package
// enters the runtime's syscall bookkeeping, and the first one after the
// process was idle wakes the runtime's monitor thread (sysmon), which then
// polls every 20 µs for a while. imcd is idle between most events, so on a
// virtual machine that cost, paid per event and per reply, was most of
// what a delivery cost it (docs/benchmarks.md). A read or write on a
// non-blocking socket never blocks the thread, so it needs none of that:
// here it is made with RawSyscall inside the descriptor's RawConn, which
// still parks the goroutine (not the thread) on the runtime's poller when
// there is nothing to read or no room to write, and still honours the
// connection's deadlines.
package rawio

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn does the raw reads and writes of one socket.
type Conn struct {
	rc syscall.RawConn

	// Batch vectors, reused: a Conn is read by one goroutine and written
	// by one goroutine at a time.
	r     readVectors
	whdrs []unix.Mmsghdr
	wiovs []unix.Iovec
}

// New returns the raw side of c (a *net.TCPConn, *net.UDPConn or
// *net.UnixConn).
func New(c syscall.Conn) (*Conn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &Conn{rc: rc}, nil
}

// ErrClosed is returned once the connection is closed (net.ErrClosed).
var ErrClosed = net.ErrClosed

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Read reads into b like net.Conn's Read (an io.Reader): it waits (the
// goroutine, not the thread) until something can be read, and returns
// io.EOF at the peer's end of a stream.
func (c *Conn) Read(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	rerr := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, err = int(r), errnoErr(e)
			return true
		}
	})
	if rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of b like net.Conn's Write, waiting for room as needed.
func (c *Conn) Write(b []byte) (int, error) {
	written := 0
	var err error
	werr := c.rc.Write(func(fd uintptr) bool {
		for written < len(b) {
			r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[written])), uintptr(len(b)-written))
			switch e {
			case 0:
				written += int(r)
			case unix.EAGAIN:
				return false
			case unix.EINTR:
			default:
				err = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return written, werr
	}
	return written, err
}

// EnableTimestamps asks the kernel to stamp each datagram with the time
// it arrived (SO_TIMESTAMPNS), for ReadBatch's stamps: what a datagram
// says about time (a reply's latency) then does not depend on when it was
// read.
func (c *Conn) EnableTimestamps() error {
	var err error
	if cerr := c.rc.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); cerr != nil {
		return cerr
	}
	return err
}

// ReadBatch reads up to len(bufs) datagrams with one recvmmsg, waiting
// until there is at least one; sizes[i] receives the length of the i-th
// and, when stamps is not nil, stamps[i] the time it arrived (zero unless
// EnableTimestamps). A datagram longer than its buffer is cut to it.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, stamps []time.Time) (int, error) {
	return c.readBatch(bufs, sizes, stamps, true)
}

// TryReadBatch is ReadBatch without waiting: 0 and no error when nothing
// has arrived.
func (c *Conn) TryReadBatch(bufs [][]byte, sizes []int, stamps []time.Time) (int, error) {
	return c.readBatch(bufs, sizes, stamps, false)
}

// cmsgSpace is CMSG_SPACE(sizeof(struct timespec)): one SCM_TIMESTAMPNS.
const cmsgSpace = unix.SizeofCmsghdr + 16

func (c *Conn) readBatch(bufs [][]byte, sizes []int, stamps []time.Time, wait bool) (n int, err error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	hdrs := c.r.prepare(bufs, stamps != nil)
	rerr := c.rc.Read(func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(len(bufs)),
			unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return !wait
		}
		n, err = int(r), errnoErr(e)
		return true
	})
	if rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	c.r.results(n, sizes, stamps)
	return n, nil
}

// readVectors are the kernel's view of a batch of datagrams to read: a
// header and a vector per buffer, and a control slot per datagram for its
// timestamp; kept between reads so that a read allocates nothing.
type readVectors struct {
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	ctl  []byte
}

// prepare points the headers at bufs (and at control slots when stamps
// are wanted) and returns the first, for recvmmsg.
func (v *readVectors) prepare(bufs [][]byte, stamps bool) *unix.Mmsghdr {
	v.hdrs, v.iovs = vectors(v.hdrs, v.iovs, bufs)
	if stamps {
		if len(v.ctl) < len(bufs)*cmsgSpace {
			v.ctl = make([]byte, len(bufs)*cmsgSpace)
		}
		for i := range bufs {
			v.hdrs[i].Hdr.Control = &v.ctl[i*cmsgSpace]
			v.hdrs[i].Hdr.SetControllen(cmsgSpace)
		}
	}
	return &v.hdrs[0]
}

// results copies what recvmmsg said of its n datagrams into sizes and,
// when not nil, stamps.
func (v *readVectors) results(n int, sizes []int, stamps []time.Time) {
	for i := 0; i < n; i++ {
		sizes[i] = int(v.hdrs[i].Len)
		if stamps != nil {
			stamps[i] = stampOf(v.ctl[i*cmsgSpace:(i+1)*cmsgSpace], v.hdrs[i].Hdr.Controllen)
		}
	}
}

// stampOf reads the SCM_TIMESTAMPNS control message of one datagram (the
// zero time when the kernel gave none).
func stampOf(ctl []byte, length uint64) time.Time {
	if length < cmsgSpace {
		return time.Time{}
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_TIMESTAMPNS {
		return time.Time{}
	}
	ts := (*unix.Timespec)(unsafe.Pointer(&ctl[unix.SizeofCmsghdr]))
	return time.Unix(ts.Sec, ts.Nsec)
}

// WriteBatch writes bufs as datagrams on a connected socket with one
// sendmmsg (the kernel may take fewer: it returns how many it took),
// waiting for room if there is none.
func (c *Conn) WriteBatch(bufs [][]byte) (n int, err error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	c.whdrs, c.wiovs = vectors(c.whdrs, c.wiovs, bufs)
	werr := c.rc.Write(func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.whdrs[0])), uintptr(len(bufs)),
			unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		n, err = int(r), errnoErr(e)
		return true
	})
	if werr != nil {
		return 0, werr
	}
	if err == nil && n == 0 {
		err = errors.New("rawio: sendmmsg took nothing")
	}
	return n, err
}

// vectors points one mmsghdr and one iovec at each buffer. Empty buffers
// get a one-byte slot of nothing (an iovec base must be valid).
func vectors(hdrs []unix.Mmsghdr, iovs []unix.Iovec, bufs [][]byte) ([]unix.Mmsghdr, []unix.Iovec) {
	if cap(hdrs) < len(bufs) {
		hdrs = make([]unix.Mmsghdr, len(bufs))
		iovs = make([]unix.Iovec, len(bufs))
	}
	hdrs, iovs = hdrs[:len(bufs)], iovs[:len(bufs)]
	for i, b := range bufs {
		iovs[i] = unix.Iovec{}
		if len(b) > 0 {
			iovs[i].Base = &b[0]
			iovs[i].SetLen(len(b))
		}
		hdrs[i] = unix.Mmsghdr{}
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.SetIovlen(1)
	}
	return hdrs, iovs
}
