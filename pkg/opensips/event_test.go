package opensips

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// decodeDatagram runs one datagram through the same path as the servers.
func decodeDatagram(data []byte) (Event, string, error) {
	h := frameHandler{eventName: DefaultEventName}
	var ev Event
	_, result, _, err := h.decode(data, &ev)
	return ev, result, err
}

// TestDecodeCapturedDatagrams replays every captured event datagram.
func TestDecodeCapturedDatagrams(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(wire, "events/datagram/*.json"))
	if err != nil || len(files) != 17 {
		t.Fatalf("captured datagrams: %d files, %v", len(files), err)
	}
	checked := map[string]bool{}
	f := func(prefix string, check func(t *testing.T, ev Event, err error)) {
		t.Helper()
		for _, name := range files {
			if strings.HasPrefix(filepath.Base(name), prefix) {
				data, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				ev, _, err := decodeDatagram(data)
				t.Run(filepath.Base(name), func(t *testing.T) { check(t, ev, err) })
				checked[name] = true
				return
			}
		}
		t.Fatalf("no capture %s*", prefix)
	}
	ok := func(want imc.Request) func(*testing.T, Event, error) {
		return func(t *testing.T, ev Event, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			if ev.Req != want {
				t.Fatalf("request\n got %+q\nwant %+q", ev.Req, want)
			}
		}
	}
	alice := func(body, ctype, callid string) imc.Request {
		return imc.Request{From: "sip:alice@127.0.0.1", RURI: "sip:chat-1@127.0.0.1", To: "sip:chat-1@127.0.0.1",
			Body: body, ContentType: ctype, CallID: callid}
	}
	f("01-", func(t *testing.T, ev Event, err error) {
		ok(alice("#create chat-1", "text/plain", "51699e06c1dedd92@lab"))(t, ev, err)
		want := Event{Req: ev.Req, FromTag: "622ca9c4", CSeq: "1", SrcIP: "127.0.0.1", SrcPort: 5071, Proto: "udp"}
		if ev != want {
			t.Fatalf("event %+v, want %+v", ev, want)
		}
	})
	f("02-", ok(alice("hello everybody in chat-1", "text/plain;charset=UTF-8", "d208ca1218501f70@lab")))
	f("03-", ok(alice("h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\x89", "text/plain;charset=UTF-8", "84352f61036bb6f2@lab")))
	f("04-", ok(alice("line1\r\nline2 \"quoted\" back\\slash\ttab /slash \x01ctl \x7fdel end", "text/plain;charset=UTF-8", "a71df86e33a753ba@lab")))
	f("05-", ok(alice("caf\xe9 na\xefve", "text/plain;charset=UTF-8", "a5763bc23070e4d5@lab")))
	f("06-", ok(alice("before", "text/plain;charset=UTF-8", "b7146a08acdf139d@lab")))
	for _, c := range []struct {
		prefix string
		n      int
		body   string
	}{{"07-", 3000, ""}, {"08-", 60000, ""}, {"09-", 64000, ""}, {"10-", 30000, `"`}, {"11-", 65206, ""}} {
		f(c.prefix, func(t *testing.T, ev Event, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Req.Body) != c.n {
				t.Fatalf("body %d bytes, want %d", len(ev.Req.Body), c.n)
			}
			if c.body != "" && ev.Req.Body != strings.Repeat(c.body, c.n) {
				t.Fatalf("body is not %d × %q", c.n, c.body)
			}
		})
	}
	f("12-", func(t *testing.T, ev Event, err error) {
		ok(imc.Request{From: "sip:alice@127.0.0.1;transport=tcp", RURI: "sip:chat-1@127.0.0.1", To: "sip:chat-1@127.0.0.1",
			Body: "via tcp", ContentType: "text/plain", CallID: "tcp-test-1@lab"})(t, ev, err)
		if ev.Proto != "tcp" || ev.SrcPort != 34376 || ev.CSeq != "42" || ev.FromTag != "tcptag1" {
			t.Fatalf("event %+v", ev)
		}
	})
	f("13-", ok(alice("no content type", "", "a790717b58bb99e9@lab")))
	f("14-", ok(alice("", "", "1c3fdc4cb64173bb@lab")))
	f("15-", ok(imc.Request{From: "sip:bob@127.0.0.1", RURI: "sip:chat-manager@127.0.0.1", To: "sip:chat-manager@127.0.0.1",
		Body: "#create chat-2 private", ContentType: "text/plain", CallID: "c91af235281f7ebc@lab"}))
	f("17-", func(t *testing.T, ev Event, err error) {
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != "" || !errors.Is(err, ErrBadEvent) {
			t.Fatalf("err %v, want a ParamError for the empty key", err)
		}
	})
	f("18-", func(t *testing.T, ev Event, err error) {
		ok(imc.Request{From: "sip:alice@127.0.0.1", RURI: "sip:chat-1@127.0.0.1", To: "sip:chat-1@127.0.0.1", Body: "injected via MI"})(t, ev, err)
		if ev.SrcPort != 5071 {
			t.Fatalf("src_port %d", ev.SrcPort)
		}
	})
	if len(checked) != len(files) {
		t.Fatalf("checked %d of %d captures", len(checked), len(files))
	}
}

// TestDecodeEventParams covers the param rules one by one.
func TestDecodeEventParams(t *testing.T) {
	var p fastjson.Parser
	f := func(params string, wantParam string) {
		t.Helper()
		v, err := p.Parse(params)
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		err = DecodeEvent(v, &ev)
		if wantParam == "-" {
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", params, err)
			}
			return
		}
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != wantParam {
			t.Fatalf("DecodeEvent(%s): err %v, want one naming %q", params, err, wantParam)
		}
	}
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":""}`, "-")
	f(`{"from":"sip:a@b","to":"sip:c@d","body":"x"}`, "-")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","cseq":7,"src_port":"5060"}`, "-")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","opensips_event":"E_IMC_MESSAGE","extra":{"x":[1]}}`, "-")
	f(`{"ruri":"sip:c@d","body":"x"}`, "from")
	f(`{"from":"","ruri":"sip:c@d","body":"x"}`, "from")
	f(`{"from":"sip:a@b","body":"x"}`, "ruri")
	f(`{"from":"sip:a@b","ruri":""}`, "ruri")
	f(`{"from":"sip:a@b","ruri":"sip:c@d"}`, "body")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":null}`, "body")
	f(`{"from":1,"ruri":"sip:c@d","body":"x"}`, "from")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","ctype":false}`, "ctype")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","callid":["x"]}`, "callid")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","cseq":"1","cseq":"2"}`, "cseq")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","cseq":-1}`, "cseq")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","cseq":1.5}`, "cseq")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","src_port":70000}`, "src_port")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","src_port":"50a"}`, "src_port")
	f(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","src_port":true}`, "src_port")
	f(`{"":"sip:a@b","from":"sip:a@b","ruri":"sip:c@d","body":"x"}`, "")
	f(`{"from":"sip:a@b","from":"sip:a@b","ruri":"sip:c@d","body":"x"}`, "from")
	f(`["sip:a@b","sip:c@d","x"]`, "params")

	var ev Event
	if err := DecodeEvent(nil, &ev); err == nil {
		t.Fatal("nil params accepted")
	}
	v, _ := p.Parse(`{"from":"sip:a@b","ruri":"sip:c@d","body":"x","cseq":4294967295}`)
	if err := DecodeEvent(v, &ev); err != nil || ev.CSeq != "4294967295" {
		t.Fatalf("numeric cseq: %q, %v", ev.CSeq, err)
	}
}

// TestDecodeEventCopies checks that nothing of the event points into the
// parser's buffer once the parser moves on.
func TestDecodeEventCopies(t *testing.T) {
	data := readWire(t, "events/datagram/04-crlf-quotes-backslash-ctl.json")
	ev, _, err := decodeDatagram(data)
	if err != nil {
		t.Fatal(err)
	}
	want := ev.Req
	wantCopy := imc.Request{From: strings.Clone(want.From), RURI: strings.Clone(want.RURI), To: strings.Clone(want.To),
		Body: strings.Clone(want.Body), ContentType: strings.Clone(want.ContentType), CallID: strings.Clone(want.CallID)}
	h := frameHandler{eventName: DefaultEventName}
	var other Event
	if _, _, _, err := h.decode(readWire(t, "events/datagram/07-body-3000.json"), &other); err != nil {
		t.Fatal(err)
	}
	if ev.Req != wantCopy {
		t.Fatal("event strings changed after the next parse")
	}
}

func TestDecodeFrameEnvelope(t *testing.T) {
	f := func(in, wantResult string, wantID string) {
		t.Helper()
		h := frameHandler{eventName: DefaultEventName}
		var ev Event
		id, result, _, err := h.decode([]byte(in), &ev)
		if result != wantResult || string(id) != wantID {
			t.Fatalf("decode(%s): result %q id %q (err %v), want %q %q", in, result, id, err, wantResult, wantID)
		}
		if (err == nil) != (wantResult == ResultOK) {
			t.Fatalf("decode(%s): err %v", in, err)
		}
	}
	const params = `"params":{"from":"sip:a@b","ruri":"sip:c@d","body":"x"}`
	f(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE",`+params+`}`, ResultOK, "")
	f(`{"id":7,"jsonrpc":"2.0","method":"E_IMC_MESSAGE",`+params+`}`, ResultOK, "7")
	f(`{"id":7,"jsonrpc":"2.0","method":"E_OTHER",`+params+`}`, ResultWrongEvent, "7")
	f(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE"}`, ResultDecodeError, "")
	f(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":`, ResultDecodeError, "")
	f(`{"jsonrpc":"2.0","result":"OK","id":3}`, ResultDecodeError, "3")
	f(`{"jsonrpc":"1.0","id":"x","method":"E_IMC_MESSAGE",`+params+`}`, ResultDecodeError, `"x"`)
	f(`[{"jsonrpc":"2.0","method":"E_IMC_MESSAGE",`+params+`}]`, ResultDecodeError, "")
	var je *jsonrpc.Error
	h := frameHandler{eventName: DefaultEventName}
	var ev Event
	if _, _, _, err := h.decode([]byte(`{`), &ev); !errors.As(err, &je) || !errors.Is(err, ErrBadEvent) {
		t.Fatalf("parse error: %v", err)
	}
}
