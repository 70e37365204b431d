package mi

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPassThroughCaptured replays every captured request for a command
// imcd does not own (event_subscribe, subscribers_list, raise_event, ...)
// through imcd with mi_passthrough = all to a fake OpenSIPS that answers
// the captured replies: the request reaches OpenSIPS byte for byte (imcd
// rebuilds it, in the member order opensips-cli writes) and its reply,
// errors included, comes back byte for byte.
func TestPassThroughCaptured(t *testing.T) {
	fake := startFake(t, false)
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	s.PassthroughAll = true
	reqs, _ := filepath.Glob(filepath.Join(wire, "mi/datagram/*.request.json"))
	n := 0
	for _, path := range reqs {
		name := captureName(path)
		if strings.HasPrefix(name, "imc_") || strings.HasPrefix(name, "which") || strings.Contains(name, "CRASH") ||
			slices.Contains([]string{"id_null", "jsonrpc_1_0", "no_jsonrpc_field", "params_string", "parse_error"}, name) {
			continue
		}
		n++
		req := readWire(t, "mi/datagram/"+name+".request.json")
		before := len(received(fake))
		got := s.Handle(context.Background(), req)
		sameBytes(t, name, got, readWire(t, "mi/datagram/"+name+".response.json"))
		if rec := received(fake); len(rec) != before+1 || !bytes.Equal(rec[len(rec)-1], req) {
			t.Errorf("%s: OpenSIPS did not receive the request verbatim", name)
		}
	}
	if n < 20 {
		t.Errorf("only %d pass-through captures replayed", n)
	}
}

// TestPassThroughNeverForwards: what crashes or confuses mi_datagram never
// reaches it; imcd answers itself.
func TestPassThroughNeverForwards(t *testing.T) {
	fake := startFake(t, false)
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	for _, req := range []string{
		string(readWire(t, "mi/datagram/batch_array_CRASH.request.json")),
		string(readWire(t, "mi/datagram/no_method_CRASH.request.json")),
		string(readWire(t, "mi/datagram/parse_error.request.json")),
		string(readWire(t, "mi/datagram/jsonrpc_1_0.request.json")),
		`{"jsonrpc":"2.0","result":"OK","id":1}`,
		`{"jsonrpc":"2.0","method":"t_uac_dlg","params":"x","id":1}`,
		`{"jsonrpc":"2.0","method":"imc_list_rooms","id":1}`,
	} {
		if got := s.Handle(context.Background(), []byte(req)); got == nil || !bytes.Contains(got, []byte(`"jsonrpc":"2.0"`)) {
			t.Errorf("%s: reply %s", req, got)
		}
	}
	if got := received(fake); len(got) != 0 {
		t.Errorf("forwarded: %q", got)
	}
}

func TestPassThroughNoAnswer(t *testing.T) {
	fake := startFake(t, true)
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	s.PassthroughAll = true
	s.Timeout = 200 * time.Millisecond
	start := time.Now()
	got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":{"event":"E_IMC_MESSAGE","socket":"udp:127.0.0.1:9999"},"id":"a-10"}`))
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s with Timeout 200ms", d)
	}
	if !bytes.HasPrefix(got, []byte(`{"jsonrpc":"2.0","error":{"code":-32000,"message":"OpenSIPS did not answer","data":"`)) ||
		!bytes.HasSuffix(got, []byte(`"},"id":"a-10"}`)) {
		t.Errorf("reply: %s", got)
	}
	// A notification is sent and not waited for.
	if got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"t_uac_dlg","params":{}}`)); got != nil {
		t.Errorf("notification answered: %s", got)
	}
	within(t, time.Second, "notification forwarded", func() {
		for len(fake.CallsTo("t_uac_dlg")) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestPassThroughErrors(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	f := func(reply []byte, err error, want string) {
		t.Helper()
		s.Forward = &fakeForwarder{ForwardFunc: func(context.Context, []byte) ([]byte, error) { return reply, err }}
		got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"core:uptime","id":3}`))
		sameBytes(t, want, got, []byte(want))
	}
	f(nil, errors.New("connection refused"),
		`{"jsonrpc":"2.0","error":{"code":-32000,"message":"OpenSIPS did not answer","data":"connection refused"},"id":3}`)
	f(nil, nil, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"OpenSIPS did not answer","data":"empty reply"},"id":3}`)
	// Whatever OpenSIPS says comes back as it is.
	f([]byte(`400 Parse_error`), nil, `400 Parse_error`)
}

// TestPassThroughPolicy: by default only the read-only commands of
// DefaultPassthrough reach OpenSIPS; anything else is answered by imcd with
// an error naming the keys, and OpenSIPS never sees it.
func TestPassThroughPolicy(t *testing.T) {
	fake := startFake(t, false)
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	s.PassthroughAllow = []string{"usrloc:dump"}
	refused := func(method string) {
		t.Helper()
		req := `{"jsonrpc":"2.0","method":"` + method + `","id":9}`
		want := `{"jsonrpc":"2.0","error":{"code":403,"message":"Not forwarded to OpenSIPS","data":"` + method +
			` is not one of the commands imcd passes to OpenSIPS (mi_passthrough = allowlist): set mi_passthrough = all, or add it to mi_passthrough_allow"},"id":9}`
		sameBytes(t, method, s.Handle(context.Background(), []byte(req)), []byte(want))
		// A notification gets no answer, and is not forwarded either.
		if got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"`+method+`"}`)); got != nil {
			t.Errorf("%s notification answered: %s", method, got)
		}
	}
	for _, m := range []string{"core:kill", "kill", "core:log_level", "log_level", "tm:uac_dlg", "t_uac_dlg",
		"evi:raise", "raise_event", "evi:subscribe", "event_subscribe", "cache:store", "usrloc:show_contact", "no_such_cmd"} {
		refused(m)
	}
	if got := received(fake); len(got) != 0 {
		t.Fatalf("forwarded: %q", got)
	}
	for _, name := range []string{"subscribers_list", "events_list"} {
		req := readWire(t, "mi/datagram/"+name+".request.json")
		sameBytes(t, name, s.Handle(context.Background(), req), readWire(t, "mi/datagram/"+name+".response.json"))
	}
	for _, m := range append(DefaultPassthrough(), "usrloc:dump") {
		before := len(fake.CallsTo(m))
		s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"`+m+`","id":1}`))
		if len(fake.CallsTo(m)) != before+1 {
			t.Errorf("%s was not forwarded", m)
		}
	}
	// which about a refused command says so; about a forwarded one, OpenSIPS answers.
	sameBytes(t, "which core:kill", s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"which","params":{"command":"core:kill"},"id":2}`)),
		[]byte(`{"jsonrpc":"2.0","error":{"code":403,"message":"Not forwarded to OpenSIPS","data":"core:kill is not one of the commands imcd passes to OpenSIPS (mi_passthrough = allowlist): set mi_passthrough = all, or add it to mi_passthrough_allow"},"id":2}`))
	before := len(fake.CallsTo("which"))
	s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"which","params":{"command":"core:uptime"},"id":3}`))
	if len(fake.CallsTo("which")) != before+1 {
		t.Error("which about core:uptime was not forwarded")
	}
	if len(fake.CallsTo("core:kill")) != 0 {
		t.Error("core:kill reached OpenSIPS")
	}
}

// TestPassThroughOff: without Forward nothing is forwarded and an unknown
// command is simply unknown.
func TestPassThroughOff(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	sameBytes(t, "core:uptime", s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"core:uptime","id":1}`)),
		[]byte(`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}`))
}
