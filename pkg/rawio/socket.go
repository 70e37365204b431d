package rawio

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is a connected UDP socket kept outside the Go runtime's poller:
// a datagram that arrives wakes nobody, and is read when its owner chooses
// to (TryReadBatch). It suits a socket whose replies are only bookkeeping
// and are read in batches anyway: registered with the poller, each reply
// would wake a sleeping thread only to find no goroutine waiting for it
// (the poller is edge-triggered: every datagram is an edge).
//
// Every call is non-blocking. Reads may run beside writes; Close waits for
// both.
type Socket struct {
	mu     sync.RWMutex // calls hold it for reading, Close for writing
	fd     int
	closed bool
	local  *net.UDPAddr

	rmu   sync.Mutex // one reader of the read vectors at a time
	wmu   sync.Mutex // one writer of the write vectors at a time
	r     readVectors
	whdrs []unix.Mmsghdr
	wiovs []unix.Iovec
}

// DialUDP opens a UDP socket connected to raddr, with receive and send
// buffers of rbuf and wbuf bytes when they are > 0 (the kernel caps them
// at net.core.rmem_max and wmem_max).
func DialUDP(raddr netip.AddrPort, rbuf, wbuf int) (*Socket, error) {
	family := unix.AF_INET
	if raddr.Addr().Is6() && !raddr.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	s := &Socket{fd: fd}
	if rbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rbuf)
	}
	if wbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, wbuf)
	}
	if err := unix.Connect(fd, sockaddr(raddr, family)); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			s.local = &net.UDPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
		case *unix.SockaddrInet6:
			s.local = &net.UDPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
		}
	}
	return s, nil
}

func sockaddr(ap netip.AddrPort, family int) unix.Sockaddr {
	if family == unix.AF_INET {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// LocalAddr is the address the socket was bound to.
func (s *Socket) LocalAddr() *net.UDPAddr { return s.local }

// EnableTimestamps asks the kernel to stamp each datagram with its
// arrival time (SO_TIMESTAMPNS), for TryReadBatch's stamps.
func (s *Socket) EnableTimestamps() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return net.ErrClosed
	}
	return unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
}

// Close closes the socket; later calls return net.ErrClosed.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}

// TryReadBatch reads, with one recvmmsg, up to len(bufs) datagrams that
// have arrived, and returns at once: 0 when none has. sizes and stamps as
// Conn.ReadBatch. A pending error (the port unreachable) comes back as the
// error.
func (s *Socket) TryReadBatch(bufs [][]byte, sizes []int, stamps []time.Time) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	hdrs := s.r.prepare(bufs, stamps != nil)
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(hdrs)), uintptr(len(bufs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, e
		}
		n := int(r)
		s.r.results(n, sizes, stamps)
		return n, nil
	}
}

// writeWait bounds how long a write waits for room in a full send buffer.
const writeWait = 100 * time.Millisecond

// WriteBatch writes bufs as datagrams with one sendmmsg and returns how
// many the kernel took; when its send buffer is full it waits for room, up
// to a tenth of a second.
func (s *Socket) WriteBatch(bufs [][]byte) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.whdrs, s.wiovs = vectors(s.whdrs, s.wiovs, bufs)
	deadline := time.Now().Add(writeWait)
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.whdrs[0])), uintptr(len(bufs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			if r == 0 {
				return 0, errors.New("rawio: sendmmsg took nothing")
			}
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if err := s.waitWritable(deadline); err != nil {
				return 0, err
			}
		default:
			return 0, e
		}
	}
}

// Write writes one datagram.
func (s *Socket) Write(b []byte) error {
	_, err := s.WriteBatch([][]byte{b})
	return err
}

// waitWritable waits until the socket has room to write, or deadline (a
// blocking poll: a full send buffer on a datagram socket is rare and
// brief). s.mu is held for reading.
func (s *Socket) waitWritable(deadline time.Time) error {
	wait := time.Until(deadline)
	if wait <= 0 {
		return unix.EAGAIN
	}
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
	for {
		_, err := unix.Poll(fds, int(wait/time.Millisecond)+1)
		if err != unix.EINTR {
			return err
		}
	}
}
