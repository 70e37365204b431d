package rawio

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// echo answers every datagram with the same bytes.
func echo(t *testing.T) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDP(buf[:n], from)
		}
	}()
	return pc
}

func bufs(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
	}
	return out
}

// readAll polls s until want datagrams came back (a poll loop: the
// socket is outside the runtime's poller, nothing else wakes for it).
func readAll(t *testing.T, s *Socket, want int) []string {
	t.Helper()
	in, sizes, stamps := bufs(8, 2048), make([]int, 8), make([]time.Time, 8)
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want {
		n, err := s.TryReadBatch(in, sizes, stamps)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			got = append(got, string(in[i][:sizes[i]]))
			if stamps[i].IsZero() || time.Since(stamps[i]) > time.Minute || time.Until(stamps[i]) > time.Second {
				t.Fatalf("datagram %d: arrival stamp %v", len(got), stamps[i])
			}
		}
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d datagrams back", len(got), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

func TestSocketBatches(t *testing.T) {
	peer := echo(t)
	s, err := DialUDP(netip.MustParseAddrPort(peer.LocalAddr().String()), 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnableTimestamps(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.TryReadBatch(bufs(4, 64), make([]int, 4), nil); n != 0 || err != nil {
		t.Fatalf("nothing arrived yet: %d, %v", n, err)
	}
	var out [][]byte
	for i := range 20 {
		out = append(out, []byte("datagram "+strconv.Itoa(i)))
	}
	for sent := 0; sent < len(out); {
		n, err := s.WriteBatch(out[sent:])
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	got := readAll(t, s, len(out))
	for i := range out {
		if got[i] != string(out[i]) {
			t.Fatalf("datagram %d: %q (UDP on loopback keeps the order)", i, got[i])
		}
	}
	if err := s.Write([]byte("one more")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, 1); got[0] != "one more" {
		t.Fatalf("%q", got[0])
	}
}

// A closed port comes back as ECONNREFUSED (the ICMP the kernel got), and
// a closed Socket as net.ErrClosed.
func TestSocketErrors(t *testing.T) {
	peer := echo(t)
	addr := netip.MustParseAddrPort(peer.LocalAddr().String())
	peer.Close()
	s, err := DialUDP(addr, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Write([]byte("anyone?"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.TryReadBatch(bufs(1, 64), make([]int, 1), nil)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ECONNREFUSED: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	s.Close()
	if _, err := s.TryReadBatch(bufs(1, 64), make([]int, 1), nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

// Conn: a stream read and written with raw calls, a deadline honoured,
// the peer's end as io.EOF.
func TestConnStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c) // echo until the client closes its side
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := New(c.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 1<<20) // more than one write's worth: Write finishes it
	for i := range msg {
		msg[i] = byte(i)
	}
	go func() { _, _ = raw.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(raw, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != msg[i] {
			t.Fatalf("byte %d", i)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := raw.Read(make([]byte, 1)); !errors.Is(err, syscall.ETIMEDOUT) && !isTimeout(err) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	_ = c.(*net.TCPConn).CloseWrite()
	if n, err := raw.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the peer's end: %d, %v", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ReadBatch waits (the goroutine) for a datagram, then takes what came.
func TestConnReadBatch(t *testing.T) {
	peer := echo(t)
	c, err := net.DialUDP("udp4", nil, peer.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := raw.WriteBatch([][]byte{[]byte("a"), []byte("b")}); n != 2 || err != nil {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	in, sizes := bufs(4, 16), make([]int, 4)
	got := ""
	for len(got) < 2 {
		n, err := raw.ReadBatch(in, sizes, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			got += string(in[i][:sizes[i]])
		}
	}
	if got != "ab" {
		t.Fatalf("%q", got)
	}
}
