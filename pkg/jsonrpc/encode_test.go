package jsonrpc

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/valyala/fastjson"
)

// TestAppendIDHostile: whatever id Decode accepts comes back as valid JSON
// (encoding/json, strict) and as the same value; the id "\u0001"
// came back "\x01".
func TestAppendIDHostile(t *testing.T) {
	var p fastjson.Parser
	for _, id := range []string{`"\u0001"`, `"\u0000"`, `"a\"b\\c"`, `"\n\r\t\b\f"`, `"\u001f\u007f"`, `"\ud83c\udf89"`,
		`"caf\u00e9"`, `"\/"`, `1`, `-0`, `1.5e+10`, `123456789012345678901234567890`, `null`} {
		m, err := Decode(&p, []byte(`{"jsonrpc":"2.0","method":"x","id":`+id+`}`))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		reply := AppendError(nil, AppendID(nil, m.ID), ErrMethodNotFound)
		var got struct{ ID json.RawMessage }
		if err := json.Unmarshal(reply, &got); err != nil {
			t.Fatalf("id %s: reply %s is not JSON: %v", id, reply, err)
		}
		var sent, back any
		_ = json.Unmarshal([]byte(id), &sent)
		_ = json.Unmarshal(got.ID, &back)
		if sent != back {
			t.Fatalf("id %s came back as %s", id, got.ID)
		}
	}
	// 01 passes fastjson and Decode's cheap integer check: written null.
	m, err := Decode(&p, []byte(`{"jsonrpc":"2.0","method":"x","id":01}`))
	if err != nil || string(AppendID([]byte("x"), m.ID)) != "xnull" {
		t.Fatalf("id 01: %v %s", err, AppendID(nil, m.ID))
	}
	if got := string(AppendID(nil, nil)); got != "null" {
		t.Fatalf("nil id: %s", got)
	}
	m, _ = Decode(&p, []byte(`{"jsonrpc":"2.0","method":"x","id":"\u0001"}`))
	if got := string(AppendID(nil, m.ID)); got != `"\u0001"` {
		t.Fatalf(`id "\u0001" -> %s`, got)
	}
}

func TestAppendValue(t *testing.T) {
	var p fastjson.Parser
	f := func(in, want string, wantErr error) {
		t.Helper()
		v, err := p.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendValue(nil, v)
		if !errors.Is(err, wantErr) {
			t.Fatalf("AppendValue(%s): %v, want %v", in, err, wantErr)
		}
		if err != nil {
			return
		}
		if string(got) != want {
			t.Fatalf("AppendValue(%s) = %s, want %s", in, got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("AppendValue(%s) = %s: not JSON", in, got)
		}
	}
	f(`{"a" : [1, "x\u0001", true, null, {"b":-2.5e3}], "\u0063":false}`, `{"a":[1,"x\u0001",true,null,{"b":-2.5e3}],"c":false}`, nil)
	f(`{"k":"v","k":"w"}`, `{"k":"v","k":"w"}`, nil) // order and copies kept: params are forwarded as sent
	f(`[]`, `[]`, nil)
	f(`{}`, `{}`, nil)
	f(`"caf`+"\xe9"+`"`, "\"caf\xe9\"", nil)
	for _, n := range []string{`NaN`, `Inf`, `-inf`, `+1`, `01`, `1.`, `.5`, `1e`, `1.2.3`, `--1`, `1e+`} {
		f(`[`+n+`]`, "", ErrNotJSON)
	}
}

func TestValidNumber(t *testing.T) {
	for _, n := range []string{"0", "-0", "1", "10", "1.5", "1e5", "1E+5", "1e-05", "-12.34e56"} {
		if !ValidNumber([]byte(n)) {
			t.Errorf("%s refused", n)
		}
	}
	for _, n := range []string{"", "-", "+1", "01", "1.", ".1", "1e", "1e+", "0x1", "1_0", "inf", "NaN", " 1"} {
		if ValidNumber([]byte(n)) {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	got := AppendRequest(nil, "core:uptime", nil, AppendString(nil, "a\x01"))
	if want := `{"jsonrpc":"2.0","method":"core:uptime","id":"a\u0001"}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	got = AppendRequest(nil, "which", []byte(`{"command":"x"}`), nil)
	if want := `{"jsonrpc":"2.0","method":"which","params":{"command":"x"}}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
