package jsonrpc

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

const wire = "../../testdata/opensips-wire"

func TestDecode(t *testing.T) {
	var p fastjson.Parser
	f := func(in string, wantErr error, wantMethod, wantID string) {
		t.Helper()
		m, err := Decode(&p, []byte(in))
		if !errors.Is(err, wantErr) {
			t.Fatalf("Decode(%s): err %v, want %v", in, err, wantErr)
		}
		if string(m.Method) != wantMethod {
			t.Fatalf("Decode(%s): method %q, want %q", in, m.Method, wantMethod)
		}
		id := ""
		if m.ID != nil {
			id = string(AppendID(nil, m.ID))
		}
		if id != wantID {
			t.Fatalf("Decode(%s): id %q, want %q", in, id, wantID)
		}
	}
	f(`{"jsonrpc":"2.0","method":"which","id":1}`, nil, "which", "1")
	f(`{"jsonrpc": "2.0", "id": "18587", "method": "which", "params": {}}`, nil, "which", `"18587"`)
	f(`{"jsonrpc":"2.0","method":"imc_list_rooms","id":null}`, nil, "imc_list_rooms", "null")
	f(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{}}`, nil, "E_IMC_MESSAGE", "")
	f(`{"jsonrpc":"2.0","method":"imc_list_rooms","id":214`, ErrParse, "", "")
	f(`[{"jsonrpc":"2.0","method":"imc_list_rooms","id":223}]`, ErrInvalidRequest, "", "")
	f(`{"jsonrpc":"2.0","id":215}`, ErrInvalidRequest, "", "215")
	f(`{"jsonrpc":"1.0","method":"imc_list_rooms","id":222}`, ErrInvalidRequest, "", "222")
	f(`{"method":"imc_list_rooms","id":216}`, ErrInvalidRequest, "", "216")
	f(`{"jsonrpc":"2.0","method":"imc_list_members","params":"sip:x@y","id":221}`, ErrInvalidRequest, "imc_list_members", "221")
	f(`{"jsonrpc":"2.0","method":7,"id":1}`, ErrInvalidRequest, "", "1")
	f(`{"jsonrpc":"2.0","method":"x","id":{"a":1}}`, ErrInvalidRequest, "", "")
	f(`{"jsonrpc":"2.0","result":"OK","id":1}`, nil, "", "1")
	f(`{"jsonrpc":"2.0","result":"OK"}`, ErrInvalidRequest, "", "")
	f(`{"jsonrpc":"2.0","id":1,"result":1,"error":{}}`, ErrInvalidRequest, "", "1")
}

// TestCapturedReplies encodes the error replies OpenSIPS sent and compares
// them byte for byte with the captures.
func TestCapturedReplies(t *testing.T) {
	var p fastjson.Parser
	f := func(name string, e *Error) {
		t.Helper()
		req, err := os.ReadFile(filepath.Join(wire, "mi/datagram", name+".request.json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(wire, "mi/datagram", name+".response.json"))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := Decode(&p, req)
		got := AppendError(nil, AppendID(nil, m.ID), e)
		if string(got) != string(want) {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	f("unknown_command", ErrMethodNotFound)
	f("jsonrpc_1_0", ErrInvalidRequest)
	f("no_jsonrpc_field", ErrInvalidRequest)
	f("params_string", ErrInvalidRequest)
	f("imc_list_members_missing_param", InvalidParams("Too few or too many parameters"))
	f("imc_list_members_wrong_param_name", InvalidParams("Named parameters do not match"))
	f("imc_list_members_no_such_room", &Error{Code: 404, Message: "no such room"})
}

func TestAppendString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(AppendString(nil, in)); got != want {
			t.Fatalf("AppendString(%q) = %s, want %s", in, got, want)
		}
	}
	f("", `""`)
	f("plain", `"plain"`)
	// The escaping OpenSIPS applied in events/datagram/04.
	f("line1\r\nline2 \"quoted\" back\\slash\ttab /slash \x01ctl \x7fdel end",
		`"line1\r\nline2 \"quoted\" back\\slash\ttab /slash \u0001ctl `+"\x7f"+`del end"`)
	f("caf\xe9", "\"caf\xe9\"")
	f("h\u00e9llo \u2713", "\"h\u00e9llo \u2713\"")
	f("\x00\x1f\b\f", `"\u0000\u001f\b\f"`)
}

// TestAppendStringSlash: the same escaping, plus '/' as "\/" (the json
// module's captures in testdata/opensips-wire/rabbitmq).
func TestAppendStringSlash(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(AppendStringSlash(nil, in)); got != want {
			t.Fatalf("AppendStringSlash(%q) = %s, want %s", in, got, want)
		}
	}
	f("", `""`)
	f("text/plain", `"text\/plain"`)
	f("a\"b\\c/\r\n\x01\x7f caf\xe9", `"a\"b\\c\/\r\n\u0001`+"\x7f caf\xe9"+`"`)
}

// TestStringRoundTrip: whatever AppendString writes, fastjson reads back
// unchanged; this is what keeps bodies intact on their way to OpenSIPS.
func TestStringRoundTrip(t *testing.T) {
	var p fastjson.Parser
	for _, s := range []string{"", "a\"b\\c", "\x00\x01\x7f\xff\xfe", strings.Repeat("\"", 300), "日本語 🎉\r\n"} {
		v, err := p.ParseBytes(AppendString(nil, s))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := string(v.GetStringBytes()); got != s {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","method":"which","id":1}`, `[]`, `{"jsonrpc":"2.0","result":{"Status":"200 OK"},"id":7}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p fastjson.Parser
		m, err := Decode(&p, data)
		if err == nil && m.Method == nil && m.Result == nil && m.Error == nil {
			t.Fatalf("accepted %q with no method, result or error", data)
		}
		if m.ID != nil {
			if reply := AppendError(nil, AppendID(nil, m.ID), ErrInvalidRequest); !json.Valid(reply) {
				t.Fatalf("%q: the reply %q is not JSON", data, reply)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	data := []byte(`{"jsonrpc":"2.0","result":{"Status":"200 OK","Message":"Via: SIP/2.0/UDP 127.0.0.1:5060\r\nContent-Length: 0\r\n\r\n"},"id":101}`)
	var p fastjson.Parser
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(&p, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := "hello room, this is alice \"quoted\"\r\nsecond line"
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}
