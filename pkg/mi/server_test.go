package mi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// capturedReplies are the datagram captures of imc and generic JSON-RPC
// behaviour, with the state they were taken in and whether imcd's reply is
// byte-identical or (rooms listed in hash order natively) the same JSON.
var capturedReplies = []struct {
	name, state string
	exact       bool
}{
	{"imc_list_members", stateInitial, true},
	{"imc_list_members_after_restart", stateRestarted, true},
	{"imc_list_members_bad_uri", stateInitial, true},
	{"imc_list_members_empty_room", stateInitial, true},
	{"imc_list_members_missing_param", stateInitial, true},
	{"imc_list_members_no_such_room", stateInitial, true},
	{"imc_list_members_positional", stateInitial, true},
	{"imc_list_members_room_uppercase", stateRestarted, true},
	{"imc_list_members_room_with_port", stateRestarted, true},
	{"imc_list_members_wrong_param_name", stateInitial, true},
	{"imc_list_rooms", stateInitial, false},
	{"imc_list_rooms_after_transcript", stateTranscript, false},
	{"imc_list_rooms_empty", stateEmpty, true},
	{"imc_list_rooms_extra_param", stateInitial, true},
	{"imc_list_rooms_newname", stateInitial, false},
	{"imc_list_rooms_params_empty_array", stateInitial, false},
	{"imc_list_rooms_params_empty_obj", stateInitial, false},
	{"id_null", stateInitial, false},
	{"unknown_command", stateInitial, true},
	{"jsonrpc_1_0", stateInitial, true},
	{"no_jsonrpc_field", stateInitial, true},
	{"params_string", stateInitial, true},
	{"which", stateInitial, true},
}

// TestHandleCaptured replays the captured mi_datagram requests and compares
// imcd's replies with the native module's.
func TestHandleCaptured(t *testing.T) {
	for _, c := range capturedReplies {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, state(t, c.state), nil)
			req := readWire(t, "mi/datagram/"+c.name+".request.json")
			want := readWire(t, "mi/datagram/"+c.name+".response.json")
			got := s.Handle(context.Background(), req)
			if c.exact {
				sameBytes(t, c.name, got, want)
			} else {
				sameJSON(t, c.name, got, want)
			}
		})
	}
}

// TestHandleMalformed: what imcd answers where OpenSIPS sends a non-JSON
// "400 Parse_error" or crashes.
func TestHandleMalformed(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	f := func(req, want string) {
		t.Helper()
		got := s.Handle(context.Background(), []byte(req))
		sameBytes(t, req, got, []byte(want))
	}
	parseErr := `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`
	invalid := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`
	// mi_http's answer to a parse error, not mi_datagram's plain text.
	f(string(readWire(t, "mi/datagram/parse_error.request.json")), parseErr)
	f(string(readWire(t, "mi/datagram/batch_array_CRASH.request.json")), invalid)
	f(string(readWire(t, "mi/datagram/no_method_CRASH.request.json")),
		`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":215}`)
	f(``, parseErr)
	f(`   `, parseErr)
	f(`not json`, parseErr)
	f(`[]`, invalid)
	f(`"imc_list_rooms"`, invalid)
	f(`{"jsonrpc":"2.0","method":"imc_list_rooms","id":[1]}`, invalid)
	f(`{"jsonrpc":"2.0","method":"","id":1}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`)
	f(`{"jsonrpc":"2.0","method":7,"id":1}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`)
	f(`{"jsonrpc":"2.0","method":"imc_list_rooms","params":null,"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`)
	// A response sent to the server is no request.
	f(`{"jsonrpc":"2.0","result":"OK","id":9}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":9}`)
	// Non-string params.
	f(`{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":5},"id":"x"}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Parameter 'room' must be a string"},"id":"x"}`)
	f(`{"jsonrpc":"2.0","method":"imc_list_members","params":[null],"id":"x"}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Parameter 'room' must be a string"},"id":"x"}`)
	f(`{"jsonrpc":"2.0","method":"imc_list_members","params":["sip:a@b","sip:c@d"],"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":1}`)
	// opensips-cli's formatting: spaces after separators, string ids.
	f(`{"jsonrpc": "2.0", "id": "4306", "method": "imc_list_rooms", "params": {"x": "y"}}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":"4306"}`)
}

func TestHandleOversize(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	s.MaxRequest = 64
	req := `{"jsonrpc":"2.0","method":"imc_list_rooms","id":1,"pad":"` + strings.Repeat("x", 64) + `"}`
	sameBytes(t, "oversize", s.Handle(context.Background(), []byte(req)),
		[]byte(`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"request larger than 64 bytes"},"id":null}`))
	if got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"imc_list_rooms","id":1}`)); !strings.Contains(string(got), `"ROOMS"`) {
		t.Errorf("request under the limit: %s", got)
	}
}

func TestHandleNotification(t *testing.T) {
	calls := 0
	reg := NewRegistry()
	if err := reg.Register(Command{Name: "test:count", Handler: func(context.Context, *fastjson.Value) ([]byte, error) {
		calls++
		return []byte(`"OK"`), nil
	}}); err != nil {
		t.Fatal(err)
	}
	s := &Server{Registry: reg}
	if got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"test:count"}`)); got != nil {
		t.Errorf("notification answered: %s", got)
	}
	if calls != 1 {
		t.Errorf("notification ran %d times, want 1", calls)
	}
	// A notification to an unknown method gets no reply either.
	if got := s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"nope"}`)); got != nil {
		t.Errorf("notification answered: %s", got)
	}
}

func TestHandlerErrorsAndPanics(t *testing.T) {
	reg := NewRegistry()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.Register(Command{Name: "test:panic", Handler: func(context.Context, *fastjson.Value) ([]byte, error) {
		panic("boom")
	}}))
	must(reg.Register(Command{Name: "test:fail", Handler: func(context.Context, *fastjson.Value) ([]byte, error) {
		return nil, errors.New("database unavailable")
	}}))
	must(reg.Register(Command{Name: "test:slow", Handler: func(ctx context.Context, _ *fastjson.Value) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}))
	s := &Server{Registry: reg, Timeout: 50 * time.Millisecond}
	f := func(req, want string) {
		t.Helper()
		sameBytes(t, req, s.Handle(context.Background(), []byte(req)), []byte(want))
	}
	f(`{"jsonrpc":"2.0","method":"test:panic","id":1}`, `{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":1}`)
	f(`{"jsonrpc":"2.0","method":"test:panic"}`, ``)
	if s.Panics() != 2 {
		t.Errorf("Panics() = %d, want 2", s.Panics())
	}
	f(`{"jsonrpc":"2.0","method":"test:fail","id":"a"}`, `{"jsonrpc":"2.0","error":{"code":500,"message":"database unavailable"},"id":"a"}`)
	f(`{"jsonrpc":"2.0","method":"test:slow","id":2}`, `{"jsonrpc":"2.0","error":{"code":500,"message":"context deadline exceeded"},"id":2}`)
}
