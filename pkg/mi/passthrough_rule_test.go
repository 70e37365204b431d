package mi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// The requests of issue 19 that walked around the allowlist: OpenSIPS
// reads keys in any case and takes the first match, imcd read "method"
// exactly and forwarded the bytes it was sent.
var aroundAllowlist = []struct{ req, data string }{
	{`{"jsonrpc":"2.0","Method":"core:log_level","method":"core:uptime","params":[3],"id":2}`,
		`key \"Method\" differs from \"method\" only in what OpenSIPS ignores (case, or what follows a NUL)`},
	{`{"jsonrpc":"2.0","METHOD":"tm:uac_dlg","PARAMS":{"method":"MESSAGE","ruri":"sip:bob@127.0.0.1","headers":"From: <sip:bank@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n","body":"x"},"method":"core:uptime","id":3}`,
		`key \"METHOD\" differs from \"method\"`},
	{`{"jsonrpc":"2.0","method":"core:uptime","params":{},"PARAMS":{"level":-3},"id":4}`,
		`key \"PARAMS\" differs from \"params\"`},
	{`{"jsonrpc":"2.0","METHOD":1,"id":5}`, `key \"METHOD\" differs from \"method\"`},
	{`{"jsonrpc":"2.0","method":"core:uptime","method":"core:kill","id":6}`, `key \"method\" appears twice`},
	{`{"jsonrpc":"2.0","method\u0000":"core:kill","method":"core:uptime","id":7}`, `key \"method\\u0000\" differs from \"method\"`},
	{`{"jsonrpc":"2.0","method":"which","params":{"COMMAND":"core:kill","command":"core:uptime"},"id":8}`,
		`params: key \"COMMAND\" differs from \"command\"`},
	{`{"jsonrpc":"2.0","method":"core:which","params":{"command":"core:uptime","command":"core:kill"},"id":9}`,
		`params: key \"command\" appears twice`},
	{`{"jsonrpc":"2.0","method":"core:kill\u0000","id":10}`, `method has a control character`},
	{`{"jsonrpc":"2.0","method":"core:uptime","params":[NaN],"id":11}`, `params: jsonrpc: not a JSON value: number \"NaN\"`},
}

// TestPassThroughReadAsOpenSIPS: each request of the issue is refused by
// imcd (-32600, its data saying why) over the Server and every transport,
// with the allowlist and with mi_passthrough = all, and nothing reaches
// OpenSIPS.
func TestPassThroughReadAsOpenSIPS(t *testing.T) {
	fake := startFake(t, false)
	for _, all := range []bool{false, true} {
		s := newServer(t, state(t, stateInitial), nil)
		s.Forward = udpForwarder{fake.MIAddr()}
		s.PassthroughAll = all
		dgram, web, fifo := openDatagram(t, s), openHTTP(t, s), openFIFO(t, s)
		for i, c := range aroundAllowlist {
			id := strconv.Itoa(i + 2) // each request's id
			want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"` + c.data
			check := func(how string, got []byte) {
				t.Helper()
				if !strings.HasPrefix(string(got), want) || !strings.HasSuffix(string(got), `"},"id":`+id+`}`) {
					t.Errorf("all=%v %s %s:\n got %s\nwant %s...\"},\"id\":%s}", all, how, c.req, got, want, id)
				}
			}
			check("Handle", s.Handle(context.Background(), []byte(c.req)))
			check("datagram", udpCall(t, dgram.LocalAddr(), []byte(c.req), 3e9))
			_, body := rawHTTP(t, web.LocalAddr(), []byte("POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "+
				strconv.Itoa(len(c.req))+"\r\n\r\n"+c.req))
			check("HTTP", body)
			check("FIFO", fifoCall(t, fifo, []byte(fmt.Sprintf(":rule_%v_%d:%s\n", all, i, c.req))))
		}
	}
	if got := received(fake); len(got) != 0 {
		t.Errorf("reached OpenSIPS: %q", got)
	}
}

// TestPassThroughRebuilds: what reaches OpenSIPS is the request imcd
// parsed, written again: members it does not know are left out, strings
// re-escaped, ids as JSON wants them.
func TestPassThroughRebuilds(t *testing.T) {
	var mu sync.Mutex
	var got []string
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = &fakeForwarder{ForwardFunc: func(_ context.Context, req []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(req))
		return []byte(`{"jsonrpc":"2.0","result":{},"id":1}`), nil
	}}
	s.PassthroughAllow = []string{"core:echo"}
	f := func(req, want string) {
		t.Helper()
		mu.Lock()
		got = nil
		mu.Unlock()
		s.Handle(context.Background(), []byte(req))
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s forwarded as %q, want %s", req, got, want)
		}
	}
	f(` { "id" : 7 , "params" : [ 1 , "a\/b" ] , "method" : "core:uptime" , "jsonrpc" : "2.0" } `,
		`{"jsonrpc":"2.0","method":"core:uptime","params":[1,"a/b"],"id":7}`)
	f(`{"jsonrpc":"2.0","method":"core:uptime","x":{"method":"core:kill"},"methods":"core:kill","id":"\u0001"}`,
		`{"jsonrpc":"2.0","method":"core:uptime","id":"\u0001"}`)
	f(`{"jsonrpc":"2.0","method":"core:echo","params":{"a":"\u0000","b":{"c":[true,null,-1.5e3]}}}`,
		`{"jsonrpc":"2.0","method":"core:echo","params":{"a":"\u0000","b":{"c":[true,null,-1.5e3]}}}`)
	f(`{"jsonrpc":"2.0","method":"which","params":["core:uptime"],"id":8}`,
		`{"jsonrpc":"2.0","method":"which","params":{"command":"core:uptime"},"id":8}`)
	f(`{"jsonrpc":"2.0","method":"core:which","params":{"command":"core:uptime"},"id":null}`,
		`{"jsonrpc":"2.0","method":"core:which","params":{"command":"core:uptime"},"id":null}`)
}

// TestRepliesAreJSON: every reply imcd writes on the MI is valid JSON by
// encoding/json's strict reading, whatever the id (issue 19: "\u0001" came
// back as "\x01"), and carries the id that was sent.
func TestRepliesAreJSON(t *testing.T) {
	fake := startFake(t, false)
	fake.Handle("core:uptime", func([]byte) ([]byte, *jsonrpc.Error) { return []byte(`{"Up since":"now"}`), nil })
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	ids := []string{`"\u0001"`, `"\u0000"`, `"\u001f\"\\"`, `"\n\r\t"`, `"\ud83c\udf89"`, `"caf\u00e9"`, `-0`, `1.5e3`, `null`, `"` + strings.Repeat(`\u0002`, 100) + `"`}
	methods := []string{
		`"imc_list_rooms"`, `"imc:list_members","params":{"room":"sip:native-1@127.0.0.1"}`, `"which"`,
		`"which","params":{"command":"imc_list_rooms"}`, `"core:uptime"`, `"core:kill"`, `"no_such"`,
		`"imc_list_members","params":{"room":1}`, `"imc_list_members","params":{"ROOM":"x","room":"y"}`,
	}
	for _, id := range ids {
		for _, m := range methods {
			req := `{"jsonrpc":"2.0","method":` + m + `,"id":` + id + `}`
			if err := opensipstest.CheckReplyID(s.Handle(context.Background(), []byte(req)), id); err != nil {
				t.Errorf("%s: %v", req, err)
			}
		}
	}
}

// FuzzPassthrough holds imcd to the rule "what reaches OpenSIPS names the
// command imcd checked": whatever a client sends, every request forwarded
// is read the way OpenSIPS reads it (opensipstest.OpenSIPSString: cJSON's
// lookup, any case, first match, up to a NUL) and must have a string
// method, the one imcd let through, on the allowlist; for which, the
// command it asks about too. Every reply must be JSON.
func FuzzPassthrough(f *testing.F) {
	for _, c := range aroundAllowlist {
		f.Add([]byte(c.req))
	}
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"core:uptime","id":1}`,
		`{"jsonrpc":"2.0","method":"which","params":{"command":"core:uptime"},"id":1}`,
		`{"jsonrpc":"2.0","method":"which","params":["core:ps"],"id":"x"}`,
		`{"jsonrpc":"2.0","method":"evi:subscribers","params":{"event":"E_IMC_MESSAGE"}}`,
	} {
		f.Add([]byte(s))
	}
	var mu sync.Mutex
	var forwarded [][]byte
	s := newServer(f, state(f, stateInitial), nil)
	s.PassthroughAllow = []string{"usrloc:dump"}
	s.Forward = &fakeForwarder{ForwardFunc: func(_ context.Context, req []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		forwarded = append(forwarded, append([]byte(nil), req...))
		return []byte(`{"jsonrpc":"2.0","result":"OK","id":1}`), nil
	}}
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, req []byte) {
		mu.Lock()
		forwarded = forwarded[:0]
		mu.Unlock()
		reply := s.Handle(context.Background(), req)
		if reply != nil && !json.Valid(reply) {
			t.Fatalf("%q: the reply %q is not JSON", req, reply)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(forwarded) == 0 {
			return
		}
		// What imcd checked: the method (and which's command) as it reads them.
		m, err := jsonrpc.Decode(&p, req)
		if err != nil {
			t.Fatalf("%q was forwarded though it does not decode: %v", req, err)
		}
		checked, command := string(m.Method), ""
		if isWhich(checked) {
			args, err := StringParams(m.Params, whichParamSets())
			if err != nil {
				t.Fatalf("which %q forwarded though its params do not match: %v", req, err)
			}
			command = args["command"]
		}
		for _, fw := range forwarded {
			method, ok := opensipstest.OpenSIPSMethod(fw)
			if !ok {
				t.Fatalf("%q forwarded as %q, in which OpenSIPS finds no method (mi_datagram crashes)", req, fw)
			}
			if isWhich(checked) && command == "" {
				// which lists: imcd fetches OpenSIPS's list itself.
				if _, asks := opensipstest.OpenSIPSString(fw, "params", "command"); method != whichName || asks {
					t.Fatalf("%q made imcd send %q, not its which", req, fw)
				}
				continue
			}
			if method != checked {
				t.Fatalf("%q forwarded as %q: OpenSIPS runs %q, imcd checked %q", req, fw, method, checked)
			}
			if command == "" {
				if !s.forwards(method) {
					t.Fatalf("%q forwarded as %q: %s is not on the allowlist", req, fw, method)
				}
				continue
			}
			if got, _ := opensipstest.OpenSIPSString(fw, "params", "command"); got != command || !s.forwards(got) {
				t.Fatalf("%q forwarded as %q: OpenSIPS describes %q, imcd checked %q", req, fw, got, command)
			}
		}
	})
}
