package mi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/valyala/fastjson"
)

// fakeOpenSIPS is a tiny OpenSIPS mi_datagram for the pass-through tests,
// until pkg/opensipstest has one: it records every datagram and answers the
// captured reply of a captured request, which with which_all's list, and
// nothing else (a silent fake never answers).
type fakeOpenSIPS struct {
	conn    net.PacketConn
	silent  bool
	replies map[string][]byte // request bytes -> reply bytes
	which   []byte            // which_all's result: OpenSIPS 4.x's command list

	mu  sync.Mutex
	got [][]byte
}

func startFakeOpenSIPS(t *testing.T, silent bool) *fakeOpenSIPS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOpenSIPS{conn: conn, silent: silent, replies: make(map[string][]byte)}
	reqs, _ := filepath.Glob(filepath.Join(wire, "mi/datagram/*.request.json"))
	for _, r := range reqs {
		reply, err := os.ReadFile(filepath.Join(wire, "mi/datagram", captureName(r)+".response.json"))
		if err != nil {
			continue // the crashes have no reply
		}
		f.replies[string(readWire(t, strings.TrimPrefix(r, wire+"/")))] = reply
	}
	var p fastjson.Parser
	v, err := p.ParseBytes(readWire(t, "mi/datagram/which_all.response.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.which = v.Get("result").MarshalTo(nil)
	done := make(chan struct{})
	go f.serve(done)
	t.Cleanup(func() { conn.Close(); <-done })
	return f
}

func (f *fakeOpenSIPS) addr() string { return f.conn.LocalAddr().String() }

func (f *fakeOpenSIPS) serve(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 65535)
	var p fastjson.Parser
	for {
		n, peer, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req := bytes.Clone(buf[:n])
		f.mu.Lock()
		f.got = append(f.got, req)
		f.mu.Unlock()
		if f.silent {
			continue
		}
		reply, ok := f.replies[string(req)]
		if !ok {
			m, err := jsonrpc.Decode(&p, req)
			if err != nil || m.ID == nil || string(m.Method) != "which" || m.Params != nil {
				continue
			}
			reply = jsonrpc.AppendResult(nil, jsonrpc.AppendID(nil, m.ID), f.which)
		}
		_, _ = f.conn.WriteTo(reply, peer)
	}
}

func (f *fakeOpenSIPS) received() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.got...)
}

func (f *fakeOpenSIPS) count(method string) int {
	n := 0
	for _, r := range f.received() {
		if bytes.Contains(r, []byte(`"method":"`+method+`"`)) {
			n++
		}
	}
	return n
}

// udpForwarder sends each request from its own socket, like the simplest
// MI client, and waits for the reply unless the request is a notification.
type udpForwarder struct{ addr string }

func (u udpForwarder) Forward(ctx context.Context, req []byte) ([]byte, error) {
	var p fastjson.Parser
	m, err := jsonrpc.Decode(&p, req)
	if err != nil {
		return nil, errors.New("fake client: refusing to forward an undecodable request")
	}
	conn, err := net.Dial("udp", u.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	if m.IsNotification() {
		return nil, nil
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

var _ Forwarder = udpForwarder{}
