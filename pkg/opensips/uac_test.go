package opensips

import (
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
)

func notice(from, to imc.URI, body string) *imc.Notice {
	return &imc.Notice{From: from, To: to, Body: body, ContentType: "text/plain"}
}

// TestAppendUACRequestCaptured compares the encoder's output byte for byte
// with requests sent to the real OpenSIPS.
func TestAppendUACRequestCaptured(t *testing.T) {
	room := imc.URI{User: "chat-1", Host: "127.0.0.1"}
	f := func(capture string, id uint64, n *imc.Notice, tag, nextHop string, fix func(string) string) {
		t.Helper()
		want := string(readWire(t, "t_uac_dlg/"+capture))
		if fix != nil {
			want = fix(want)
		}
		got, err := AppendUACRequest(nil, id, n, tag, nextHop)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("%s:\n got %s\nwant %s", capture, got, want)
		}
	}
	// imc.URI keeps no port: the capture's ruri had one.
	f("ok_200.request.json", 101, notice(room, imc.URI{User: "ok", Host: "127.0.0.1"}, "hello from the sidecar"), "room1tag", "",
		func(s string) string {
			return strings.Replace(s, `"ruri":"sip:ok@127.0.0.1:5090"`, `"ruri":"sip:ok@127.0.0.1"`, 1)
		})
	f("next_hop.request.json", 104, notice(room, imc.URI{User: "ok", Host: "example.invalid"}, "via next_hop"), "nh", "sip:127.0.0.1:5090", nil)
	f("via_proxy_registered.request.json", 130, notice(room, imc.URI{User: "alice", Host: "127.0.0.1"}, "via proxy to alice"), "px", "", nil)
	f("via_proxy_unregistered_404.request.json", 131, notice(room, imc.URI{User: "zed", Host: "127.0.0.1"}, "nobody"), "px", "", nil)
}

// headersAsOpenSIPS returns the header lines OpenSIPS would build from a
// request's headers param, literal \r\n sequences included.
func headersAsOpenSIPS(t *testing.T, req []byte) []string {
	t.Helper()
	var p fastjson.Parser
	v, err := p.ParseBytes(req)
	if err != nil {
		t.Fatalf("request is not JSON: %v\n%s", err, req)
	}
	if v.Get("params", "Content-Length") != nil {
		t.Fatal("Content-Length param")
	}
	h := string(v.GetStringBytes("params", "headers"))
	h = strings.ReplaceAll(h, `\r\n`, "\r\n")
	if !strings.HasSuffix(h, "\r\n") {
		t.Fatalf("headers %q do not end in CRLF", h)
	}
	lines := strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n\x00") {
			t.Fatalf("header line %q carries a control byte", l)
		}
	}
	return lines
}

func headerNames(lines []string) string {
	var names []string
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ":")
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

// TestUACHeaderInjection tries to smuggle headers through every input that
// reaches the headers param.
func TestUACHeaderInjection(t *testing.T) {
	room := imc.URI{User: "chat-1", Host: "example.com"}
	bob := imc.URI{User: "bob", Host: "example.com"}
	ctype := func(ct string, wantErr bool) {
		t.Helper()
		n := notice(room, bob, "hi")
		n.ContentType = ct
		req, err := AppendUACRequest(nil, 1, n, "t", "")
		if wantErr {
			if !errors.Is(err, ErrUnsafeHeader) {
				t.Fatalf("Content-Type %q: err %v, want ErrUnsafeHeader", ct, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Content-Type %q: %v", ct, err)
		}
		if got := headerNames(headersAsOpenSIPS(t, req)); got != "From,To,Content-Type" {
			t.Fatalf("Content-Type %q: headers %s", ct, got)
		}
	}
	ctype("text/plain", false)
	ctype("text/plain;charset=UTF-8", false)
	ctype("text/plain; charset=utf-8", false)
	ctype("", false) // defaults to text/plain
	ctype("text/plain\r\nX-Evil: 1", true)
	ctype("text/plain\nX-Evil: 1", true)
	ctype("text/plain\rX-Evil: 1", true)
	ctype(`text/plain\r\nX-Evil: 1`, true)
	ctype(`text/plain;charset="utf-8"`, true)
	ctype("text/plain>", true)
	ctype("text/plain\x00", true)
	ctype("text/plain\t", true)
	ctype("text/pl\u00e4in", true)

	callid := func(cid string, wantKept bool) {
		t.Helper()
		n := notice(room, bob, "hi")
		n.InReplyTo = cid
		req, omitted, err := appendUAC(nil, 1, n, "t", 0, false, Route{})
		if err != nil {
			t.Fatalf("Call-ID %q: %v", cid, err)
		}
		lines := headersAsOpenSIPS(t, req)
		want := "From,To,Content-Type"
		if wantKept {
			want += ",In-Reply-To"
			if lines[3] != "In-Reply-To: "+cid {
				t.Fatalf("Call-ID %q: line %q", cid, lines[3])
			}
		}
		if got := headerNames(lines); got != want || omitted != (cid != "" && !wantKept) {
			t.Fatalf("Call-ID %q: headers %s (omitted %v), want %s", cid, got, omitted, want)
		}
	}
	callid("", false)
	callid("51699e06c1dedd92@lab", true)
	callid("a71df86e33a753ba", true)
	callid(`odd-but-legal.!%*_+`+"`'~()<>:\"/[]?{}@host", true)
	callid("x@lab\r\nX-Evil: 1", false)
	callid("x@lab\nX-Evil: 1", false)
	callid(`x@lab\r\nX-Evil: 1`, false)
	callid(`x\@lab`, false)
	callid("x@lab;evil=1", false)
	callid("x@lab X-Evil", false)
	callid("a@b@c", false)
	callid("@lab", false)
	callid("lab@", false)
	callid("x\x00y", false)
	callid(strings.Repeat("x", 256), false)

	// URIs are validated by imc; a hand-made one is still refused.
	for _, u := range []imc.URI{{}, {User: "bob>", Host: "h"}, {User: "bob", Host: "h\r\nX: y"}, {User: `b\r\nob`, Host: "h"}, {User: "b;o", Host: "h"}} {
		if _, err := AppendUACRequest(nil, 1, notice(room, u, "x"), "t", ""); !errors.Is(err, ErrUnsafeHeader) {
			t.Fatalf("To %+v: err %v", u, err)
		}
		if _, err := AppendUACRequest(nil, 1, notice(u, bob, "x"), "t", ""); !errors.Is(err, ErrUnsafeHeader) {
			t.Fatalf("From %+v: err %v", u, err)
		}
	}
	for _, tag := range []string{"", "a b", "a\r\nX: y", `a\r\n`, "a;b", "a>"} {
		if _, err := AppendUACRequest(nil, 1, notice(room, bob, "x"), tag, ""); !errors.Is(err, ErrUnsafeHeader) {
			t.Fatalf("tag %q: err %v", tag, err)
		}
	}

	// The body goes only in body, escaped; it never reaches headers.
	n := notice(room, bob, "hi\r\nX-Evil: 1\r\n\\r\\nContent-Length: 0\r\n\"}\x00\xe9")
	req, err := AppendUACRequest(nil, 1, n, "t", "sip:proxy.example.com\r\nX: y")
	if err != nil {
		t.Fatal(err)
	}
	if got := headerNames(headersAsOpenSIPS(t, req)); got != "From,To,Content-Type" {
		t.Fatalf("headers %s", got)
	}
	var p fastjson.Parser
	v, err := p.ParseBytes(req)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.GetStringBytes("params", "body")) != n.Body {
		t.Fatalf("body %q", v.GetStringBytes("params", "body"))
	}
	if string(v.GetStringBytes("params", "next_hop")) != "sip:proxy.example.com\r\nX: y" {
		t.Fatal("next_hop not escaped")
	}
}

func TestAppendUACRequestNoAlloc(t *testing.T) {
	n := &imc.Notice{From: imc.URI{User: "chat-1", Host: "example.com"}, To: imc.URI{User: "bob", Host: "example.com"},
		Body: "<alice@example.com>: hello \"room\"\r\nline 2", ContentType: "text/plain;charset=UTF-8", InReplyTo: "abc@host"}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(200, func() {
		var err error
		buf, _, err = appendUAC(buf[:0], 12345, n, "1a2b3c4d-", 12345, true, Route{NextHop: "sip:proxy.example.com;lr"})
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}
