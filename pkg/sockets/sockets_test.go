package sockets

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	f := func(s string, allowed []string, wantNetwork, wantAddr, wantErr string) {
		t.Helper()
		a, err := Parse(s, allowed...)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("Parse(%q) = %+v, %v; want error with %q", s, a, err, wantErr)
			}
			return
		}
		if err != nil || a.Network != wantNetwork || a.Addr != wantAddr {
			t.Fatalf("Parse(%q) = %+v, %v", s, a, err)
		}
		if a.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, a.String())
		}
	}
	f("tcp:127.0.0.1:9998", nil, TCP, "127.0.0.1:9998", "")
	f("udp:127.0.0.1:9999", nil, UDP, "127.0.0.1:9999", "")
	f("udp:[::1]:9999", nil, UDP, "[::1]:9999", "")
	f("unix:/run/imcd/ev.sock", nil, Unixgram, "/run/imcd/ev.sock", "")
	f("unix:run/ev.sock", nil, "", "", "must be absolute")
	f("tcp:127.0.0.1", nil, "", "", "must be ip:port")
	f("tcp:127.0.0.1:", nil, "", "", "missing port")
	f("127.0.0.1:9998", nil, "", "", "tcp:ip:port, udp:ip:port or unix:/path")
	f("tcp:127.0.0.1:8080", []string{UDP, Unixgram}, "", "", "must be udp:ip:port or unix:/path")
	f("udp:127.0.0.1:8080", []string{UDP, Unixgram}, UDP, "127.0.0.1:8080", "")
}

func TestBound(t *testing.T) {
	ln, err := Listen(context.Background(), Address{Network: TCP, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b := Bound(ln.Addr())
	if b.Network != TCP || strings.HasSuffix(b.Addr, ":0") || b.String() != "tcp:"+ln.Addr().String() {
		t.Fatalf("Bound(%v) = %+v", ln.Addr(), b)
	}
	path := filepath.Join(t.TempDir(), "s.sock")
	pc, err := ListenPacket(context.Background(), Address{Network: Unixgram, Addr: path})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if b := Bound(pc.LocalAddr()); b.String() != "unix:"+path {
		t.Fatalf("Bound(unix) = %q", b.String())
	}
	if !Bound(nil).IsZero() {
		t.Fatal("Bound(nil) is not zero")
	}
}

// TestRemoveStale replaces a socket file left by an earlier run and refuses
// to touch anything else.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "left.sock")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	pc.Close() // a unix datagram socket's file stays, as after a crash
	pc2, err := ListenPacket(context.Background(), Address{Network: Unixgram, Addr: path})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	pc2.Close()
	regular := filepath.Join(dir, "data")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenPacket(context.Background(), Address{Network: Unixgram, Addr: regular}); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("a regular file in the way: %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Fatal("a regular file was touched")
	}
	if err := RemoveStale(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing path: %v", err)
	}
}

// echoServer is the smallest server written in the lifecycle's idiom.
type echoServer struct {
	pc    net.PacketConn
	life  Lifecycle
	fails atomic.Int32
}

func (s *echoServer) Listen(ctx context.Context) error {
	return s.life.Listen(func() error {
		pc, err := ListenPacket(ctx, Address{Network: UDP, Addr: "127.0.0.1:0"})
		if err != nil {
			return err
		}
		s.pc = pc
		return nil
	})
}

func (s *echoServer) Serve() error { return s.life.Serve(s.echo) }

func (s *echoServer) echo() error {
	buf := make([]byte, 64)
	for {
		n, peer, err := s.pc.ReadFrom(buf)
		if err != nil {
			if s.life.Closing() {
				return nil
			}
			return err
		}
		s.pc.WriteTo(buf[:n], peer)
	}
}

func (s *echoServer) Open(ctx context.Context) error {
	return s.life.Open(ctx, s.Listen, s.Serve, func(error) { s.fails.Add(1) })
}

func (s *echoServer) Close() error {
	return s.life.Close(func() error { return CloseQuietly(s.pc) })
}

func TestLifecycle(t *testing.T) {
	s := &echoServer{}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); !errors.Is(err, ErrListening) {
		t.Fatalf("second Open: %v", err)
	}
	if err := s.Listen(ctx); !errors.Is(err, ErrListening) {
		t.Fatalf("Listen after Open: %v", err)
	}
	cancel() // Open's context bounds the opening only
	echo := func() error {
		c, err := net.Dial("udp", s.pc.LocalAddr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 8)
		_, err = c.Read(buf)
		return err
	}
	if err := echo(); err != nil {
		t.Fatalf("not serving after Open's context ended: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Open(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	if s.fails.Load() != 0 {
		t.Fatal("a Serve that ended by Close was reported as a failure")
	}
	var never echoServer
	if err := never.Close(); err != nil {
		t.Fatalf("Close before Open: %v", err)
	}
	if err := never.Serve(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	var idle echoServer
	if err := idle.Serve(); !errors.Is(err, ErrNotListening) {
		t.Fatalf("Serve before Listen: %v", err)
	}
}

// TestLifecycleListenFails: a server whose binding failed is not
// listening, so Serve refuses and Listen may be tried again.
func TestLifecycleListenFails(t *testing.T) {
	var l Lifecycle
	refused := errors.New("address in use")
	if err := l.Listen(func() error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("Listen = %v, want the binding's error", err)
	}
	if err := l.Serve(func() error { t.Fatal("served without listening"); return nil }); !errors.Is(err, ErrNotListening) {
		t.Fatalf("Serve after a failed Listen: %v", err)
	}
	if err := l.Listen(func() error { return nil }); err != nil {
		t.Fatalf("Listen again after a failure: %v", err)
	}
	if err := l.Listen(func() error { t.Fatal("bound twice"); return nil }); !errors.Is(err, ErrListening) {
		t.Fatalf("Listen while listening: %v", err)
	}
	if err := l.Close(nil); err != nil {
		t.Fatal(err)
	}
}
