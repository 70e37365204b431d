package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// The events imcbench sends must be what imcd's own decoder accepts, with
// every param where OpenSIPS puts it.
func TestAppendEventDecodes(t *testing.T) {
	f := func(text, wantBody string) {
		t.Helper()
		b := appendEvent(nil, "u1-2", "f10-7", 42, 9, text)
		var p fastjson.Parser
		m, err := jsonrpc.Decode(&p, b)
		if err != nil || !m.IsNotification() || string(m.Method) != "E_IMC_MESSAGE" {
			t.Fatalf("%s: %v", b, err)
		}
		var ev opensips.Event
		if err := opensips.DecodeEvent(m.Params, &ev); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		want := imc.Request{From: "sip:u1-2@bench.test", RURI: "sip:f10-7@bench.test", To: "sip:f10-7@bench.test",
			Body: wantBody, ContentType: "text/plain", CallID: "b42x9@imcbench"}
		if ev.Req != want || ev.CSeq != "1" || ev.FromTag != "t2a" || ev.SrcPort != 5071 || ev.Proto != "udp" {
			t.Errorf("decoded %+v", ev)
		}
	}
	f("", "bench 42 hello everybody in this room")
	f("#join", "#join")
	f(`say "hi"\`, `say "hi"\`)
}

// The sink finds the id, the method and the event of imcd's real requests.
func TestScanUAC(t *testing.T) {
	chat := &imc.Notice{From: imc.URI{User: "f10-7", Host: benchDomain}, To: imc.URI{User: "u7-3", Host: benchDomain},
		Body: "<u7-1@bench.test>: bench 1234 hello", ContentType: "text/plain"}
	b, err := opensips.AppendUACRequest(nil, 98765, chat, "tag1", "")
	if err != nil {
		t.Fatal(err)
	}
	if !isUAC(b) {
		t.Errorf("not recognised as t_uac_dlg: %s", b)
	}
	if id, ok := trailingID(b); !ok || id != 98765 {
		t.Errorf("id %d %v", id, ok)
	}
	if seq, ok := eventSeq(b, 5); !ok || seq != 1234 {
		t.Errorf("chat seq %d %v", seq, ok)
	}

	reply := &imc.Notice{From: imc.URI{User: "c3", Host: benchDomain}, To: imc.URI{User: "w3", Host: benchDomain},
		Body: "*** <sip:w3@bench.test> has joined the room", ContentType: "text/plain", InReplyTo: "b77x5@imcbench"}
	b, _ = opensips.AppendUACRequest(nil, 1, reply, "tag1", "sip:127.0.0.1:5060")
	if seq, ok := eventSeq(b, 5); !ok || seq != 77 {
		t.Errorf("reply seq %d %v in %s", seq, ok, b)
	}
	if _, ok := eventSeq(b, 6); ok {
		t.Error("a reply of another run was attributed")
	}

	other := &imc.Notice{From: reply.From, To: reply.To, Body: "*** joined", ContentType: "text/plain"}
	b, _ = opensips.AppendUACRequest(nil, 2, other, "tag1", "")
	if _, ok := eventSeq(b, 5); ok {
		t.Error("a broadcast without In-Reply-To was attributed")
	}
	if isUAC([]byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":{},"id":1}`)) {
		t.Error("event_subscribe taken for t_uac_dlg")
	}
}

func TestLeadingUint(t *testing.T) {
	f := func(in string, want uint64, digits int) {
		t.Helper()
		if n, d := leadingUint([]byte(in)); n != want || d != digits {
			t.Errorf("%q: %d, %d digits", in, n, d)
		}
	}
	f("123}", 123, 3)
	f("0", 0, 1)
	f("x1", 0, 0)
	f("", 0, 0)
	f("18446744073709551615", 1<<64-1, 20)
	f("18446744073709551616", 0, 0)
}

// The sink answers imcd's real MI client: the subscription and every
// delivery end as 200 OK, and the deliveries are counted and attributed.
func TestSinkAnswersMIClient(t *testing.T) {
	for i, delay := range []time.Duration{0, 20 * time.Millisecond, 0} {
		s, err := startSink(delay, i == 2, clock{base: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		c := &opensips.MIClient{Addr: s.addr(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeout: 3 * time.Second}
		if err := c.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		res, err := c.Call(context.Background(), "event_subscribe", []byte(`{"event":"E_IMC_MESSAGE","socket":"tcp:127.0.0.1:9998","expire":120}`))
		if err != nil || string(res) != `"OK"` || s.subscribedSocket() != "tcp:127.0.0.1:9998" {
			t.Fatalf("subscribe: %s %v (socket %q)", res, err, s.subscribedSocket())
		}
		if _, err := c.Call(context.Background(), "which", nil); err == nil || !strings.Contains(err.Error(), "Method not found") {
			t.Errorf("which: %v", err)
		}
		rec := newRecorder(10, false)
		s.attach(rec, 1)
		outcomes := make(chan delivery.Outcome, 10)
		for i := range 10 {
			n := &imc.Notice{From: imc.URI{User: "room", Host: benchDomain}, To: imc.URI{User: "u", Host: benchDomain},
				Body: "<a@bench.test>: bench " + string(rune('0'+i)) + " x", ContentType: "text/plain"}
			if err := c.Send(n, uint64(i), func(_ uint64, o delivery.Outcome, _ bool) { outcomes <- o }); err != nil {
				t.Fatal(err)
			}
		}
		c.Flush()
		for range 10 {
			select {
			case o := <-outcomes:
				if !o.Delivered() {
					t.Errorf("delay %v: outcome %v", delay, o)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("delay %v: no outcome", delay)
			}
		}
		if got := s.delivered.Load(); got != 10 {
			t.Errorf("delay %v: counted %d deliveries", delay, got)
		}
		if got := rec.complete(10, 1); got != 10 {
			t.Errorf("delay %v: %d events attributed", delay, got)
		}
		c.Close()
		s.close()
	}
}

func TestRecorderLatencies(t *testing.T) {
	r := newRecorder(3, true)
	r.sent[0].Store(100)
	r.sent[1].Store(200)
	r.sent[2].Store(300)
	r.note(0, 150)
	r.note(0, 180)
	r.note(1, 260)
	r.note(7, 1) // out of range: ignored
	first, last, incomplete := r.latencies(3, 2)
	if len(first) != 1 || first[0] != 50 || last[0] != 80 || incomplete != 2 {
		t.Errorf("first %v last %v incomplete %d", first, last, incomplete)
	}
	if seq := <-r.done; seq != 0 {
		t.Errorf("done %d", seq)
	}
	if seq := <-r.done; seq != 1 {
		t.Errorf("done %d", seq)
	}
}
