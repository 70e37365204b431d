package opensipstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

const wire = "../../testdata/opensips-wire"

func readWire(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wire, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client is a bare MI client: one UDP socket, like opensips-cli's.
type client struct {
	t testing.TB
	c net.Conn
}

func newClient(t testing.TB, s *Server) *client {
	c, err := net.Dial("udp", s.MIAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t, c}
}

func (c *client) send(req []byte) {
	c.t.Helper()
	if _, err := c.c.Write(req); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next reply, nil when none comes within d.
func (c *client) recv(d time.Duration) []byte {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 65536)
	n, err := c.c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return buf[:n]
}

func (c *client) roundTrip(req []byte) []byte {
	c.t.Helper()
	c.send(req)
	r := c.recv(2 * time.Second)
	if r == nil {
		c.t.Fatalf("no reply to %s", req)
	}
	return r
}

// TestCapturedSynchronousReplies replays captured MI requests whose reply
// does not depend on time, and compares the replies byte for byte.
func TestCapturedSynchronousReplies(t *testing.T) {
	s := start(t, Options{})
	c := newClient(t, s)
	f := func(dir, name string) {
		t.Helper()
		req := readWire(t, dir+"/"+name+".request.json")
		want := readWire(t, dir+"/"+name+".response.json")
		if got := c.roundTrip(req); !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	for _, name := range []string{
		"subscribers_list_after_restart", // nothing subscribed yet
		"event_subscribe", "event_subscribe_bad_socket", "event_subscribe_expire0_unsubscribe",
		"event_subscribe_expire_as_string", "event_subscribe_missing_socket", "event_subscribe_negative_expire",
		"event_subscribe_no_expire", "event_subscribe_positional", "event_subscribe_tcp",
		"event_subscribe_unknown_event", "evi_subscribe_newname", "subscribers_list_unknown_event",
		"events_list", "which", "which_all", "unknown_command", "no_jsonrpc_field", "jsonrpc_1_0", "params_string",
	} {
		f("mi/datagram", name)
	}
	for _, name := range []string{
		"err_bad_headers", "err_body_without_ctype", "err_content_length_given", "err_cseq_method_mismatch",
		"err_invalid_next_hop", "err_invalid_ruri", "err_missing_from", "err_missing_headers_param",
		"err_missing_to", "err_positional_params", "unresolvable_host",
	} {
		f("t_uac_dlg", name)
	}
	if got := c.roundTrip(readWire(t, "mi/datagram/parse_error.request.json")); string(got) != string(readWire(t, "mi/datagram/parse_error.response.txt")) {
		t.Fatalf("parse error: %q", got)
	}
	if len(s.Deliveries()) != 0 {
		t.Fatalf("refused requests recorded as deliveries: %+v", s.Deliveries())
	}
}

// TestSubscribersList checks the listing shapes, ttl aside.
func TestSubscribersList(t *testing.T) {
	s := start(t, Options{})
	c := newClient(t, s)
	c.roundTrip(readWire(t, "mi/datagram/event_subscribe.request.json"))
	ttl := func(b []byte) string { // ttl counts down: compare it loosely
		return string(bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(`"ttl":3600`), []byte(`"ttl":N`)), []byte(`"ttl":3599`), []byte(`"ttl":N`)))
	}
	f := func(name string) {
		t.Helper()
		got := c.roundTrip(readWire(t, "mi/datagram/"+name+".request.json"))
		if want := readWire(t, "mi/datagram/"+name+".response.json"); ttl(got) != ttl(want) {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	f("subscribers_list")
	f("subscribers_list_event")
	c.roundTrip(readWire(t, "mi/datagram/event_subscribe_tcp.request.json"))
	f("subscribers_list_udp_and_tcp")
	c.roundTrip([]byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":{"event":"E_IMC_MESSAGE","socket":"udp:127.0.0.1:9997","expire":3600},"id":1}`))
	f("subscribers_list_event_socket")
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, s)
	if got, want := c2.roundTrip(readWire(t, "mi/datagram/subscribers_list_after_restart.request.json")), readWire(t, "mi/datagram/subscribers_list_after_restart.response.json"); !bytes.Equal(got, want) {
		t.Fatalf("after restart: %s", got)
	}
	// Expiry.
	c2.roundTrip([]byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":["E_IMC_MESSAGE","udp:127.0.0.1:9999",1],"id":1}`))
	if len(s.Subscriptions("E_IMC_MESSAGE")) != 1 {
		t.Fatal("not subscribed")
	}
	time.Sleep(1100 * time.Millisecond)
	if len(s.Subscriptions("E_IMC_MESSAGE")) != 0 {
		t.Fatal("not expired")
	}
}

// TestUACDlgAsync checks the asynchronous replies: shapes as captured,
// out of order, no reply for notifications, and what is recorded.
func TestUACDlgAsync(t *testing.T) {
	s := start(t, Options{FrTimeout: 150 * time.Millisecond})
	s.SetNoAnswer("sip:silent@127.0.0.1:5090")
	s.SetStatus("sip:nf@127.0.0.1", "404 Not Found")
	s.SetDelay("sip:ok@127.0.0.1", 600*time.Millisecond)
	c := newClient(t, s)

	c.send(readWire(t, "t_uac_dlg/408_no_answer.request.json")) // id 107, 150 ms
	c.send(readWire(t, "t_uac_dlg/ok_200.request.json"))        // id 101, 600 ms
	c.send(readWire(t, "t_uac_dlg/404.request.json"))           // id 105, at once
	c.send(readWire(t, "t_uac_dlg/notification_no_id.request.json"))
	var replies [][]byte
	for range 3 {
		r := c.recv(2 * time.Second)
		if r == nil {
			t.Fatal("missing reply")
		}
		replies = append(replies, r)
	}
	if r := c.recv(300 * time.Millisecond); r != nil {
		t.Fatalf("unexpected reply %s", r)
	}
	var p fastjson.Parser
	ids := ""
	for _, r := range replies {
		v, err := p.ParseBytes(r)
		if err != nil {
			t.Fatal(err)
		}
		ids += v.Get("id").String() + " "
	}
	if ids != "105 107 101 " {
		t.Fatalf("reply order %s", ids)
	}
	if want := readWire(t, "t_uac_dlg/408_no_answer.response.json"); !bytes.Equal(replies[1], want) {
		t.Fatalf("408:\n got %s\nwant %s", replies[1], want)
	}
	ok := string(replies[2])
	if !strings.HasPrefix(ok, `{"jsonrpc":"2.0","result":{"Status":"200 OK","Message":"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK`) ||
		!strings.HasSuffix(ok, `.0\r\nTo: <sip:ok@127.0.0.1>;tag=uas5090\r\nFrom: <sip:chat-1@127.0.0.1>;tag=room1tag\r\nCSeq: 10 MESSAGE\r\nCall-ID: `+ok[strings.Index(ok, "Call-ID: ")+9:strings.Index(ok, `\r\nContent-Length`)]+`\r\nContent-Length: 0\r\n\r\n"},"id":101}`) {
		t.Fatalf("200: %s", ok)
	}
	if !strings.HasPrefix(string(replies[0]), `{"jsonrpc":"2.0","result":{"Status":"404 Not Found","Message":"Via: `) {
		t.Fatalf("404: %s", replies[0])
	}

	ds := s.Deliveries()
	if len(ds) != 4 {
		t.Fatalf("%d deliveries", len(ds))
	}
	d := ds[1]
	if d.ID != "101" || d.MIMethod != "t_uac_dlg" || d.Method != "MESSAGE" || d.RURI != "sip:ok@127.0.0.1:5090" ||
		d.From != "sip:chat-1@127.0.0.1" || d.FromTag != "room1tag" || d.To != "sip:ok@127.0.0.1" ||
		d.ContentType != "text/plain" || d.Body != "hello from the sidecar" || !d.HasBody ||
		d.Headers != "From: <sip:chat-1@127.0.0.1>;tag=room1tag\r\nTo: <sip:ok@127.0.0.1>\r\nContent-Type: text/plain\r\n" {
		t.Fatalf("delivery %+v", d)
	}
	if ds[3].ID != "" || ds[3].Body != "notification" {
		t.Fatalf("notification %+v", ds[3])
	}

	// Literal \r\n in headers, given Call-ID/CSeq, next_hop and tm:uac_dlg.
	s.ClearRules()
	for _, name := range []string{"headers_literal_backslash_crlf", "callid_cseq_given", "next_hop", "newname_nobody"} {
		r := string(c.roundTrip(readWire(t, "t_uac_dlg/"+name+".request.json")))
		if !strings.Contains(r, `"Status":"200 OK"`) {
			t.Fatalf("%s: %s", name, r)
		}
		if name == "callid_cseq_given" && (!strings.Contains(r, `CSeq: 7 MESSAGE\r\nCall-ID: sidecar-0001@imcd\r\n`) || !strings.HasSuffix(r, `"id":"str-103"}`)) {
			t.Fatalf("%s: %s", name, r)
		}
	}
	ds = s.Deliveries()[4:]
	if ds[0].From != "sip:chat-1@127.0.0.1" || ds[0].FromTag != "" || ds[0].ContentType != "text/plain" {
		t.Fatalf("literal crlf: %+v", ds[0])
	}
	if v, _ := ds[1].Header("X-Imc-Room"); v != "chat-1" || ds[1].Body != "h\u00e9llo \u2713 multi\r\nline" {
		t.Fatalf("callid_cseq_given: %+v", ds[1])
	}
	if ds[2].NextHop != "sip:127.0.0.1:5090" || ds[3].MIMethod != "tm:uac_dlg" || ds[3].HasBody {
		t.Fatalf("next_hop/newname: %+v %+v", ds[2], ds[3])
	}

	// SetError: a synchronous refusal, not a delivery.
	s.SetError("sip:ok@127.0.0.1", 476, "Unresolvable destination (476/MI/UAC)")
	if r := string(c.roundTrip(readWire(t, "t_uac_dlg/ok_200.request.json"))); r != `{"jsonrpc":"2.0","error":{"code":476,"message":"Unresolvable destination (476/MI/UAC)"},"id":101}` {
		t.Fatalf("SetError: %s", r)
	}
	if len(s.Deliveries()) != 8 {
		t.Fatal("refused request recorded as a delivery")
	}
}

func TestCrashesAndHandlers(t *testing.T) {
	s := start(t, Options{})
	c := newClient(t, s)
	c.send(readWire(t, "mi/datagram/no_method_CRASH.request.json"))
	c.send(readWire(t, "mi/datagram/batch_array_CRASH.request.json"))
	if r := c.recv(200 * time.Millisecond); r != nil {
		t.Fatalf("reply to a crash request: %s", r)
	}
	if s.Crashes() != 2 {
		t.Fatalf("%d crashes", s.Crashes())
	}
	s.Handle("core:uptime", func(params []byte) ([]byte, *jsonrpc.Error) {
		return []byte(`{"Now":"x","Up since":"y","Up time":"1 [sec]"}`), nil
	})
	if r := string(c.roundTrip([]byte(`{"jsonrpc":"2.0","method":"core:uptime","id":3}`))); r != `{"jsonrpc":"2.0","result":{"Now":"x","Up since":"y","Up time":"1 [sec]"},"id":3}` {
		t.Fatalf("handler: %s", r)
	}
	s.Reset()
	if s.Crashes() != 0 || len(s.Calls()) != 0 {
		t.Fatal("Reset")
	}
}

// TestEventFormat builds each captured event from its params and compares
// the bytes with the capture.
func TestEventFormat(t *testing.T) {
	var p fastjson.Parser
	fromCapture := func(data []byte) Event {
		v, err := p.ParseBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		g := func(k string) string { return string(v.GetStringBytes("params", k)) }
		return Event{From: g("from"), FromTag: g("from_tag"), To: g("to"), RURI: g("ruri"), CallID: g("callid"), CSeq: g("cseq"),
			SrcIP: g("src_ip"), SrcPort: v.GetInt("params", "src_port"), Proto: g("proto"), CType: g("ctype"), Body: g("body")}
	}
	files, _ := filepath.Glob(filepath.Join(wire, "events/datagram/*.json"))
	if len(files) != 17 {
		t.Fatalf("%d captures", len(files))
	}
	for _, f := range files[:15] { // 17 and 18 come from MI raise_event
		want := readWire(t, "events/datagram/"+filepath.Base(f))
		ev := fromCapture(want)
		if got := ev.AppendJSON(nil, "E_IMC_MESSAGE", 0, ""); !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %.300s\nwant %.300s", filepath.Base(f), got, want)
		}
	}
	// The NUL byte cuts the body, as in 06-nul-byte.
	ev := fromCapture(readWire(t, "events/datagram/06-nul-byte.json"))
	ev.Body = "before\x00after"
	if got := ev.AppendJSON(nil, "E_IMC_MESSAGE", 0, ""); !bytes.Equal(got, readWire(t, "events/datagram/06-nul-byte.json")) {
		t.Fatalf("NUL: %s", got)
	}
	// Reliable mode: the first request of the capture.
	stream := readWire(t, "events/stream/reliable-mode-3-requests.stream.txt")
	first := stream[:bytes.Index(stream, []byte(`}}{`))+2]
	ev = fromCapture(first)
	if got := ev.AppendJSON(nil, "E_IMC_MESSAGE", 1325833874, "opensips_event"); !bytes.Equal(got, first) {
		t.Fatalf("reliable:\n got %s\nwant %s", got, first)
	}
}

// TestRaise sends events to real subscribers of each kind.
func TestRaise(t *testing.T) {
	s := start(t, Options{})
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newClient(t, s)
	for _, sock := range []string{"udp:" + udp.LocalAddr().String(), "tcp:" + ln.Addr().String()} {
		c.roundTrip([]byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":{"event":"E_IMC_MESSAGE","socket":"` + sock + `"},"id":1}`))
		if err := s.WaitSubscribed(context.Background(), "E_IMC_MESSAGE", sock); err != nil {
			t.Fatal(err)
		}
	}
	ev1 := NewEvent("sip:alice@127.0.0.1", "sip:chat-1@127.0.0.1", "one")
	ev2 := NewEvent("sip:alice@127.0.0.1", "sip:chat-1@127.0.0.1", "two")
	for _, ev := range []Event{ev1, ev2} {
		if _, err := s.Raise(ev); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 70000)
	udp.SetReadDeadline(time.Now().Add(2 * time.Second))
	for _, ev := range []Event{ev1, ev2} {
		n, _, err := udp.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], ev.AppendJSON(nil, "E_IMC_MESSAGE", 0, "")) {
			t.Fatalf("udp datagram %s %v", buf[:n], err)
		}
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	want := append(ev1.AppendJSON(nil, "E_IMC_MESSAGE", 0, ""), ev2.AppendJSON(nil, "E_IMC_MESSAGE", 0, "")...)
	got := make([]byte, len(want))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("tcp stream %s %v", got, err)
	}
	// The peer closes: the next event reconnects.
	conn.Close()
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Raise(ev1); err != nil {
		t.Fatal(err)
	}
	conn, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	one := ev1.AppendJSON(nil, "E_IMC_MESSAGE", 0, "")
	got = make([]byte, len(one))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, one) {
		t.Fatalf("after reconnect: %s %v", got, err)
	}
	if n, _, err := udp.ReadFrom(buf); err != nil || n != len(one) {
		t.Fatalf("third datagram: %d bytes, %v", n, err)
	}
	// Too big for a datagram: refused, nothing sent; the stream still gets it.
	big := NewEvent("sip:alice@127.0.0.1", "sip:chat-1@127.0.0.1", strings.Repeat("\x01", 20000))
	if _, err := s.Raise(big); !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("big event: %v", err)
	}
	udp.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, _, err := udp.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("oversized datagram sent")
	}
	if err := s.RaiseRaw("udp:"+udp.LocalAddr().String(), []byte("raw")); err != nil {
		t.Fatal(err)
	}
	udp.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _, _ := udp.ReadFrom(buf); string(buf[:n]) != "raw" {
		t.Fatalf("raw %q", buf[:n])
	}
}

// TestRaiseReliable plays the listener of reliable-mode-3-replies.
func TestRaiseReliable(t *testing.T) {
	s := start(t, Options{Reliable: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock := "tcp:" + ln.Addr().String()
	s.subscribe("E_IMC_MESSAGE", sock, 3600)
	var answer atomic.Bool
	answer.Store(true)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		dec := json.NewDecoder(conn)
		for {
			var req struct {
				ID     int64 `json:"id"`
				Params struct {
					Event string `json:"opensips_event"`
				} `json:"params"`
			}
			if dec.Decode(&req) != nil {
				return
			}
			if answer.Load() && req.Params.Event == "E_IMC_MESSAGE" {
				conn.Write([]byte(`{"jsonrpc": "2.0", "result": "ok", "id": ` + jsonInt(req.ID) + `}`))
			}
		}
	}()
	replies, err := s.Raise(NewEvent("sip:alice@127.0.0.1", "sip:chat-1@127.0.0.1", "reliable 1"))
	if err != nil || len(replies) != 1 || string(replies[0].Raw) != `{"jsonrpc": "2.0", "result": "ok", "id": `+jsonInt(replies[0].ID)+`}` {
		t.Fatalf("replies %+v %v", replies, err)
	}
	answer.Store(false)
	replies, err = s.Raise(NewEvent("sip:alice@127.0.0.1", "sip:chat-1@127.0.0.1", "noreply 1"))
	if err == nil || replies[0].Raw != nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("no reply: %+v %v", replies, err)
	}
	if len(s.Replies()) != 2 {
		t.Fatalf("recorded %d replies", len(s.Replies()))
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestRestartKeepsAddress: same MI port, no subscriptions, old replies lost.
func TestRestartKeepsAddress(t *testing.T) {
	s := start(t, Options{ReplyDelay: 200 * time.Millisecond})
	addr := s.MIAddr()
	c := newClient(t, s)
	c.roundTrip(readWire(t, "mi/datagram/event_subscribe.request.json"))
	c.send(readWire(t, "t_uac_dlg/ok_200.request.json"))
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.MIAddr() != addr || len(s.Subscriptions("")) != 0 {
		t.Fatalf("after restart: %s, %d subscriptions", s.MIAddr(), len(s.Subscriptions("")))
	}
	if r := c.recv(400 * time.Millisecond); r != nil {
		t.Fatalf("reply from before the restart: %s", r)
	}
	if r := string(c.roundTrip(readWire(t, "mi/datagram/event_subscribe.request.json"))); r != `{"jsonrpc":"2.0","result":"OK","id":1}` {
		t.Fatal(r)
	}
	s.Down()
	c.send([]byte(`{"jsonrpc":"2.0","method":"which","id":1}`))
	if r := c.recv(200 * time.Millisecond); r != nil {
		t.Fatalf("reply while down: %s", r)
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if len(s.Subscriptions("")) != 1 {
		t.Fatal("Down/Up lost subscriptions")
	}
	s.Close()
	s.Close()
}
