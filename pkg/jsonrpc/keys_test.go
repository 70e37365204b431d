package jsonrpc

import (
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

// TestDecodeRefusesWhatOpenSIPSReadsOtherwise: an envelope whose members
// OpenSIPS (cJSON: any case, up to a NUL, first match) would read otherwise
// than imcd is an Invalid Request whose data names the key; the id is kept
// for the answer unless it is the id that is in doubt.
func TestDecodeRefusesWhatOpenSIPSReadsOtherwise(t *testing.T) {
	var p fastjson.Parser
	f := func(in, wantData, wantID string) {
		t.Helper()
		m, err := Decode(&p, []byte(in))
		var je *Error
		if !errors.As(err, &je) || !errors.Is(err, ErrInvalidRequest) || !strings.Contains(je.Data, wantData) {
			t.Fatalf("Decode(%s): %v, want an Invalid Request saying %q", in, err, wantData)
		}
		id := ""
		if m.ID != nil {
			id = string(AppendID(nil, m.ID))
		}
		if id != wantID {
			t.Fatalf("Decode(%s): id %q, want %q", in, id, wantID)
		}
	}
	// The request: OpenSIPS ran core:log_level.
	f(`{"jsonrpc":"2.0","Method":"core:log_level","method":"core:uptime","params":[3],"id":2}`,
		`key "Method" differs from "method"`, "2")
	f(`{"jsonrpc":"2.0","method":"core:uptime","METHOD":"core:kill","id":2}`, `key "METHOD" differs`, "2")
	f(`{"jsonrpc":"2.0","METHOD":1,"id":3}`, `key "METHOD" differs`, "3")
	f(`{"jsonrpc":"2.0","method":"tm:uac_dlg","PARAMS":{},"params":{},"id":4}`, `key "PARAMS"`, "4")
	f(`{"JsonRpc":"2.0","method":"core:uptime","id":5}`, `key "JsonRpc"`, "5")
	f(`{"jsonrpc":"2.0","method":"core:uptime","method":"core:kill","id":6}`, `key "method" appears twice`, "6")
	f(`{"jsonrpc":"2.0","method":"core:uptime","\u006dethod":"core:kill","id":7}`, `key "method" appears twice`, "7")
	f(`{"jsonrpc":"2.0","method\u0000x":"core:kill","method":"core:uptime","id":8}`, `only in what OpenSIPS ignores`, "8")
	f(`{"jsonrpc":"2.0","method":"core:uptime","x":1,"x":2,"id":9}`, `key "x" appears twice`, "9")
	f(`{"jsonrpc":"2.0","method":"core:uptime","id":1,"id":2}`, `key "id" appears twice`, "")
	f(`{"jsonrpc":"2.0","method":"core:uptime","ID":1,"id":2}`, `key "ID" differs from "id"`, "")
	f(`{"jsonrpc":"2.0","method":"core:uptime","id":+1}`, "id is not a JSON number", "")
	f(`{"jsonrpc":"2.0","method":"core:uptime","id":NaN}`, "id is not a JSON number", "")
	f(`{"jsonrpc":"2.0","method":"core:uptime\u0000","id":10}`, "control character", "10")
	f(`{"jsonrpc":"2.0","method":"core:kill\n","id":11}`, "control character", "11")
	// Many keys: the map path.
	many := `{"jsonrpc":"2.0","method":"core:uptime"`
	for i := 0; i < 40; i++ {
		many += `,"k` + strings.Repeat("x", i) + `":1`
	}
	f(many+`,"kxx":2,"id":12}`, `key "kxx" appears twice`, "12")
	f(many+`,"Id":2,"id":12}`, `key "Id" differs`, "")

	// Unknown keys of other spellings are no member: they pass, and
	// nothing reads them.
	if _, err := Decode(&p, []byte(many+`,"id":13}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(&p, []byte(`{"jsonrpc":"2.0","method":"core:uptime","methods":1,"id":14}`)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckKeys(t *testing.T) {
	var p fastjson.Parser
	f := func(in string, wantErr string) {
		t.Helper()
		v, err := p.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := v.Object()
		je := CheckKeys(o, "command")
		if wantErr == "" && je != nil || wantErr != "" && (je == nil || !strings.Contains(je.Data, wantErr) || je.Code != CodeInvalidRequest) {
			t.Fatalf("CheckKeys(%s) = %v, want %q", in, je, wantErr)
		}
	}
	f(`{}`, "")
	f(`{"command":"core:uptime"}`, "")
	f(`{"COMMAND":"core:kill","command":"core:uptime"}`, `key "COMMAND" differs from "command"`)
	f(`{"command":"core:uptime","command":"core:kill"}`, `key "command" appears twice`)
	f(`{"`+strings.Repeat("k", 100)+`":1,"`+strings.Repeat("k", 100)+`":1}`, `key "`+strings.Repeat("k", 64)+`..." appears twice`)
	if CheckKeys(nil, "x") != nil {
		t.Fatal("nil object refused")
	}
}
