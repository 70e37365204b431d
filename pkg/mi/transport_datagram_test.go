package mi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// openDatagram serves s on a fresh UDP socket on 127.0.0.1:0.
func openDatagram(t *testing.T, s *Server) *DatagramTransport {
	t.Helper()
	tr := &DatagramTransport{Server: s, Addr: "127.0.0.1:0"}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// udpCall sends req from a new ephemeral socket, as opensips-cli does, and
// returns the reply (nil after timeout).
func udpCall(t *testing.T, addr net.Addr, req []byte, timeout time.Duration) []byte {
	t.Helper()
	conn, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65535) // opensips-cli's datagram_buffer_size
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// TestDatagramCaptured replays the mi_datagram captures over UDP.
func TestDatagramCaptured(t *testing.T) {
	servers := map[string]*DatagramTransport{}
	for _, c := range capturedReplies {
		tr := servers[c.state]
		if tr == nil {
			tr = openDatagram(t, newServer(t, state(t, c.state), nil))
			servers[c.state] = tr
		}
		got := udpCall(t, tr.LocalAddr(), readWire(t, "mi/datagram/"+c.name+".request.json"), 2*time.Second)
		want := readWire(t, "mi/datagram/"+c.name+".response.json")
		if c.exact {
			sameBytes(t, c.name, got, want)
		} else {
			sameJSON(t, c.name, got, want)
		}
	}
	tr := servers[stateInitial]
	// Where mi_datagram answers "400 Parse_error" (not JSON) or crashes.
	sameBytes(t, "parse_error", udpCall(t, tr.LocalAddr(), readWire(t, "mi/datagram/parse_error.request.json"), 2*time.Second),
		[]byte(`{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`))
	sameBytes(t, "batch", udpCall(t, tr.LocalAddr(), readWire(t, "mi/datagram/batch_array_CRASH.request.json"), 2*time.Second),
		[]byte(`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`))
	sameBytes(t, "no method", udpCall(t, tr.LocalAddr(), readWire(t, "mi/datagram/no_method_CRASH.request.json"), 2*time.Second),
		[]byte(`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":215}`))
}

// TestDatagramOpensipsCLI replays what opensips-cli sends over datagrams
// (which, then the command, each from a new socket) against the state its
// fake answered, and compares with those answers.
func TestDatagramOpensipsCLI(t *testing.T) {
	tr := openDatagram(t, newServer(t, state(t, stateCLI), nil))
	call := func(file string) []byte {
		return udpCall(t, tr.LocalAddr(), readWire(t, "opensips-cli/sent-bytes/"+file), time.Second)
	}
	for _, which := range []string{"datagram-1-which.req.json", "datagram-3-which.req.json", "datagram-5-which.req.json"} {
		got := call(which)
		names := resultNames(t, got)
		for _, n := range append(imcNames, "which") {
			if !slices.Contains(names, n) {
				t.Errorf("%s: %q missing from %q", which, n, names)
			}
		}
		if got, want := rawID(t, got), rawID(t, readWire(t, "opensips-cli/sent-bytes/"+which)); got != want || got[0] != '"' {
			t.Errorf("%s: id %s, want the string %s", which, got, want)
		}
	}
	sameBytes(t, "imc_list_rooms", call("datagram-2-imc_list_rooms.req.json"),
		readWire(t, "opensips-cli/sent-bytes/datagram-2-imc_list_rooms.minimal-reply.json"))
	sameBytes(t, "imc_list_members positional", call("datagram-4-imc_list_members-positional-arg.req.json"),
		readWire(t, "opensips-cli/sent-bytes/datagram-4-imc_list_members.minimal-reply.json"))
	sameBytes(t, "imc_list_members room=", call("datagram-6-imc_list_members-room=arg.req.json"),
		bytes.Replace(readWire(t, "opensips-cli/sent-bytes/datagram-4-imc_list_members.minimal-reply.json"), []byte(`"18140"`), []byte(`"13895"`), 1))
}

func TestDatagramUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mi.sock")
	tr := &DatagramTransport{Server: newServer(t, state(t, stateInitial), nil), Network: "unixgram", Addr: path}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	client, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "cli.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.WriteTo(readWire(t, "mi/datagram/imc_list_members.request.json"), &net.UnixAddr{Name: path, Net: "unixgram"}); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65535)
	n, err := client.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "unix", buf[:n], readWire(t, "mi/datagram/imc_list_members.response.json"))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	// A socket file left behind (a crash) is replaced at the next start.
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stale.Close()
	tr2 := &DatagramTransport{Server: tr.Server, Network: "unixgram", Addr: path}
	if err := tr2.Listen(context.Background()); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	tr2.Close()
}

func TestDatagramLimits(t *testing.T) {
	// 2000 rooms: a list_rooms reply over 65,507 bytes.
	rs := imc.NewRooms()
	for i := range 2000 {
		rs.Put(room(t, fmt.Sprintf("sip:room-%04d@example.com", i), "sip:owner@example.com"))
	}
	s := newServer(t, rs, nil)
	s.MaxRequest = 1000
	tr := openDatagram(t, s)
	got := udpCall(t, tr.LocalAddr(), []byte(`{"jsonrpc":"2.0","method":"imc_list_rooms","id":"big"}`), 2*time.Second)
	if !bytes.HasPrefix(got, []byte(`{"jsonrpc":"2.0","error":{"code":-32001,"message":"Reply too large","data":"`)) || !bytes.HasSuffix(got, []byte(`},"id":"big"}`)) {
		t.Errorf("too large a reply: %.200s", got)
	}
	req := `{"jsonrpc":"2.0","method":"imc_list_rooms","id":1,"pad":"` + strings.Repeat("x", 2000) + `"}`
	sameBytes(t, "oversize", udpCall(t, tr.LocalAddr(), []byte(req), 2*time.Second),
		[]byte(`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"request larger than 1000 bytes"},"id":null}`))
	// Still serving.
	if got := udpCall(t, tr.LocalAddr(), []byte(`{"jsonrpc":"2.0","method":"imc_list_members","params":["sip:room-0001@example.com"],"id":2}`), 2*time.Second); !bytes.Contains(got, []byte(`"NO_MEMBERS":1`)) {
		t.Errorf("after oversize: %s", got)
	}
}

func TestDatagramLifecycle(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	tr := &DatagramTransport{Server: s, Addr: "127.0.0.1:0"}
	if err := tr.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Listen(context.Background()); err != sockets.ErrListening {
		t.Errorf("second Listen: %v", err)
	}
	// Open's context bounds the opening only: cancelling it later must not
	// stop the transport (Close does).
	ctx, cancel := context.WithCancel(context.Background())
	if err := tr.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Open(ctx); !errors.Is(err, sockets.ErrListening) {
		t.Errorf("second Open: %v", err)
	}
	addr := tr.LocalAddr()
	cancel()
	if got := udpCall(t, addr, []byte(`{"jsonrpc":"2.0","method":"which","id":1}`), time.Second); got == nil {
		t.Fatal("no reply after the Open context ended")
	}
	within(t, 2*time.Second, "Close", func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	if got := udpCall(t, addr, []byte(`{"jsonrpc":"2.0","method":"which","id":1}`), 100*time.Millisecond); got != nil {
		t.Errorf("served after Close: %s", got)
	}
	if err := tr.Open(context.Background()); !errors.Is(err, sockets.ErrClosed) {
		t.Errorf("Open after Close: %v", err)
	}
	bad := &DatagramTransport{Server: s, Network: "tcp", Addr: "127.0.0.1:0"}
	if err := bad.Listen(context.Background()); err == nil {
		t.Error("tcp accepted as a datagram network")
	}
	if err := (&DatagramTransport{Server: s}).Close(); err != nil {
		t.Errorf("Close before Open: %v", err)
	}
}
