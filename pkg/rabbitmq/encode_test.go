package rabbitmq

import (
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// TestAppendJSONCaptures re-encodes every captured JSON message and
// expects OpenSIPS's bytes back.
func TestAppendJSONCaptures(t *testing.T) {
	var p fastjson.Parser
	n := 0
	for _, m := range captures(t) {
		if m.Headers != nil {
			continue
		}
		n++
		var ev opensips.Event
		if err := Decode(&p, nil, m.Body, &ev); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if got := AppendJSON(nil, &ev); !bytes.Equal(got, m.Body) {
			t.Errorf("%s:\n got %q\nwant %q", m.Name, got, m.Body)
		}
		if m.ContentType != ContentTypeJSON {
			t.Errorf("%s: content type %q", m.Name, m.ContentType)
		}
	}
	if n != 6 {
		t.Fatalf("%d JSON captures, want 6", n)
	}
}

// TestAppendJSONRoundTrip encodes events with every kind of byte and
// decodes them back.
func TestAppendJSONRoundTrip(t *testing.T) {
	var p fastjson.Parser
	f := func(body string) {
		t.Helper()
		ev := opensips.Event{Req: imc.Request{From: "sip:a@b", To: "sip:c@d", RURI: "sip:chat-1@d", CallID: "x/y", ContentType: "text/plain", Body: body},
			FromTag: "t", CSeq: "7", SrcIP: "10.0.0.1", SrcPort: 65535, Proto: "tcp"}
		var got opensips.Event
		if err := Decode(&p, nil, AppendJSON(nil, &ev), &got); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if got != ev {
			t.Errorf("%q:\n got %#v\nwant %#v", body, got, ev)
		}
	}
	f("")
	f("hello")
	f("\x01\x1f\x7f \"\\/\b\f\n\r\t")
	f("caf\xe9 \xff\xfe")
	f(strings.Repeat("é✓🎉", 100))
}
