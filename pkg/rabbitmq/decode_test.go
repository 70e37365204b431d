package rabbitmq

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// TestDecodeCaptures decodes every captured message, both forms, and checks
// each param against the capture.
func TestDecodeCaptures(t *testing.T) {
	msgs := captures(t)
	var p fastjson.Parser
	seen := 0
	f := func(prefix string, want opensips.Event) {
		t.Helper()
		for _, m := range msgs {
			if !strings.HasPrefix(m.Name, prefix) {
				continue
			}
			seen++
			var ev opensips.Event
			if err := Decode(&p, m.table(), m.Body, &ev); err != nil {
				t.Errorf("%s: %v", m.Name, err)
				return
			}
			if ev != want {
				t.Errorf("%s:\n got %#v\nwant %#v", m.Name, ev, want)
			}
			return
		}
		t.Fatalf("no capture %s", prefix)
	}
	const alice, to = "sip:alice@127.0.0.1", "sip:x@127.0.0.1"
	jsonEv := func(room, tag, callid string, port int, ctype, body string) opensips.Event {
		return opensips.Event{
			Req:     imc.Request{From: alice, RURI: "sip:" + room + "@127.0.0.1", To: to, Body: body, ContentType: ctype, CallID: callid},
			FromTag: tag, CSeq: "1", SrcIP: "127.0.0.1", SrcPort: port, Proto: "udp",
		}
	}
	hdrEv := func(room, callid, ctype, body string) opensips.Event {
		return opensips.Event{
			Req:  imc.Request{From: alice, RURI: "sip:" + room + "@127.0.0.1", Body: body, ContentType: ctype, CallID: callid},
			CSeq: "1",
		}
	}
	const ctl = "line1\r\nq\"uote b\\ack\ttab/slash\x01ctl\x7f"
	f("01-", jsonEv("chat-r1", "260e443c", "35cfac32985f3c79@lab", 37290, "text/plain;charset=UTF-8",
		"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\x89"))
	f("02-", jsonEv("chat-r1", "b141c6d1", "ce4e8f6b824b29e4@lab", 35908, "text/plain", "caf\xe9 na\xefve"))
	f("03-", jsonEv("chat-r1", "5e9a3343", "4e276c6734728811@lab", 57518, "text/plain", ctl))
	f("04-", jsonEv("chat-r3", "8cc024d4", "421f1281344c5d59@lab", 36239, "", ""))
	f("05-", hdrEv("hdr-r2", "63f0f17d649e290b@lab", "", ""))
	f("06-", jsonEv("chat-manager", "8ccd0940", "768cd63fb96b2d4d@lab", 34756, "text/plain", "#create chat-r1"))
	f("07-", jsonEv("chat-r2", "f9b02909", "9ae65e00205bf366@lab", 48277, "", "no ctype"))
	f("08-", hdrEv("hdr-r1", "c3583af370d1ddb2@lab", "text/plain", "plain via headers"))
	f("09-", hdrEv("hdr-r1", "0e98652231852218@lab", "text/plain", "caf\xe9 na\xefve"))
	f("10-", hdrEv("hdr-r1", "134f6cbc105d7f9c@lab", "text/plain", ctl))
	if seen != len(msgs) {
		t.Fatalf("checked %d of %d captures", seen, len(msgs))
	}
}

// TestDecodeMatchesEventStream sends the same MESSAGE through a real
// event_stream server and checks that both sources decode it to the same
// event: a JSON capture as the params of an E_IMC_MESSAGE notification, a
// headers capture as the params the shipped imcd.cfg would raise for it.
func TestDecodeMatchesEventStream(t *testing.T) {
	got := make(chan opensips.Event, 16)
	srv := &opensips.EventStreamServer{Addr: "127.0.0.1:0", Sink: opensips.SinkFunc(func(ev opensips.Event, done func(error)) error {
		got <- ev
		done(nil)
		return nil
	})}
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var p fastjson.Parser
	for _, m := range captures(t) {
		var ev opensips.Event
		if err := Decode(&p, m.table(), m.Body, &ev); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		params := m.Body
		if m.Headers != nil {
			params = paramsOf(m)
		}
		frame := append([]byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":`), params...)
		if _, err := conn.Write(append(frame, '}')); err != nil {
			t.Fatal(err)
		}
		select {
		case st := <-got:
			if st.Transport != opensips.TransportStream {
				t.Fatalf("transport %q", st.Transport)
			}
			st.Transport = ""
			if st != ev {
				t.Errorf("%s:\nrabbitmq     %#v\nevent_stream %#v", m.Name, ev, st)
			}
		case <-time.After(patience):
			t.Fatalf("%s: event_stream gave nothing", m.Name)
		}
	}
}

// paramsOf writes the params object event_stream would carry for a headers
// capture: the same strings, escaped as OpenSIPS escapes them (invalid
// UTF-8 raw).
func paramsOf(m message) []byte {
	b := []byte("{")
	add := func(k, v string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = jsonrpc.AppendString(append(jsonrpc.AppendString(b, k), ':'), v)
	}
	for _, k := range []string{hdrFrom, hdrRURI, hdrCallID, hdrCSeq, hdrCType} {
		if v, ok := m.Headers[k]; ok {
			add(k, v)
		}
	}
	add("body", string(m.Body))
	return append(b, '}')
}

// TestDecodeRefuses checks that messages that can never be applied are
// refused as bad events, naming what is wrong.
func TestDecodeRefuses(t *testing.T) {
	var p fastjson.Parser
	f := func(headers amqp.Table, body, want string) {
		t.Helper()
		var ev opensips.Event
		err := Decode(&p, headers, []byte(body), &ev)
		if !errors.Is(err, opensips.ErrBadEvent) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v %q: error %v, want ErrBadEvent mentioning %q", headers, body, err, want)
		}
	}
	f(nil, `not json`, "not JSON")
	f(nil, ``, "not JSON")
	f(nil, `[1,2]`, "not an object")
	f(nil, `{"ruri":"sip:chat-1@h","body":"x"}`, `"from"`)
	f(nil, `{"from":"sip:a@h","ruri":"sip:chat-1@h"}`, `"body"`)
	f(nil, `{"from":"sip:a@h","ruri":"sip:chat-1@h","body":"x","src_port":70000}`, `"src_port"`)
	f(amqp.Table{"from": "", "ruri": "sip:chat-1@h"}, "x", `"from"`)
	f(amqp.Table{"from": "sip:a@h"}, "x", `"ruri"`)
	f(amqp.Table{"from": int32(5), "ruri": "sip:chat-1@h"}, "x", `"from"`)
	f(amqp.Table{"from": "sip:a@h", "ruri": "sip:chat-1@h", "src_port": int32(-1)}, "x", `"src_port"`)
	f(amqp.Table{"from": "sip:a@h", "ruri": "sip:chat-1@h", "cseq": 1.5}, "x", `"cseq"`)
}

// TestDecodeHeaderTypes checks the header types OpenSIPS may send: an AVP
// holding an int goes out as an int32 header.
func TestDecodeHeaderTypes(t *testing.T) {
	var p fastjson.Parser
	var ev opensips.Event
	h := amqp.Table{"from": "sip:a@h", "to": "sip:chat-1@h", "cseq": int32(7), "src_port": int32(5060), "from_tag": []byte("t1")}
	if err := Decode(&p, h, []byte("hi"), &ev); err != nil {
		t.Fatal(err)
	}
	want := opensips.Event{Req: imc.Request{From: "sip:a@h", RURI: "sip:chat-1@h", To: "sip:chat-1@h", Body: "hi"}, CSeq: "7", SrcPort: 5060, FromTag: "t1"}
	if ev != want {
		t.Fatalf("got %#v\nwant %#v", ev, want)
	}
}

// FuzzDecode: no input panics, and an accepted one names a sender and a
// destination.
func FuzzDecode(f *testing.F) {
	for _, m := range captures(f) {
		f.Add(m.Body, m.Headers != nil)
	}
	f.Fuzz(func(t *testing.T, body []byte, withHeaders bool) {
		var p fastjson.Parser
		var h amqp.Table
		if withHeaders {
			h = amqp.Table{"from": "sip:a@h", "ruri": string(body)}
		}
		var ev opensips.Event
		if err := Decode(&p, h, body, &ev); err == nil && (ev.Req.From == "" || ev.Req.RURI == "") {
			t.Fatalf("accepted without from or ruri: %#v", ev)
		}
	})
}

func TestRedacted(t *testing.T) {
	f := func(url, want string) {
		t.Helper()
		if got := Redacted(url); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", url, got, want)
		}
	}
	f("amqp://guest:secret@127.0.0.1:5672/", "amqp://127.0.0.1:5672")
	f("amqp://u:p@rabbit.example.com/imcd", "amqp://rabbit.example.com:5672/imcd")
	f("amqps://u:p@[::1]:5671/", "amqps://[::1]:5671")
	f("http://x/", "(unparsable URL)")
}
