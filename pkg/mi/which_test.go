package mi

import (
	"context"
	"slices"
	"testing"
	"time"
)

// imcNames are the names opensips-cli users type, both spellings.
var imcNames = []string{"imc:list_rooms", "imc_list_rooms", "imc:list_members", "imc_list_members"}

func TestWhichOwnCommands(t *testing.T) {
	admin, _ := recordingAdmin(nil)
	s := newServer(t, state(t, stateInitial), admin)
	for _, req := range []string{
		`{"jsonrpc":"2.0","method":"which","id":500}`,
		`{"jsonrpc": "2.0", "id": "18587", "method": "which", "params": {}}`,
		`{"jsonrpc":"2.0","method":"core:which","params":[],"id":1}`,
	} {
		got := resultNames(t, s.Handle(context.Background(), []byte(req)))
		want := append(s.Registry.Names(), "core:which", "which")
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", req, got, want)
		}
		for _, n := range append(imcNames, "imc:create_room", "imc_create_room", "imc:notice", "imc_notice") {
			if !slices.Contains(got, n) {
				t.Errorf("%s: %q not listed", req, n)
			}
		}
	}
}

func TestWhichCommand(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	f := func(req, want string) {
		t.Helper()
		sameBytes(t, req, s.Handle(context.Background(), []byte(req)), []byte(want))
	}
	// The capture: which {"command":"imc_list_members"}.
	f(string(readWire(t, "mi/datagram/which.request.json")), string(readWire(t, "mi/datagram/which.response.json")))
	f(`{"jsonrpc":"2.0","method":"core:which","params":["imc:list_members"],"id":1}`, `{"jsonrpc":"2.0","result":[["room"]],"id":1}`)
	f(`{"jsonrpc":"2.0","method":"which","params":{"command":"imc:list_rooms"},"id":1}`, `{"jsonrpc":"2.0","result":[[]],"id":1}`)
	f(`{"jsonrpc":"2.0","method":"which","params":{"command":"which"},"id":1}`, `{"jsonrpc":"2.0","result":[[],["command"]],"id":1}`)
	f(`{"jsonrpc":"2.0","method":"which","params":{"command":"tm:uac_dlg"},"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":404,"message":"unknown MI command"},"id":1}`)
	f(`{"jsonrpc":"2.0","method":"which","params":{"cmd":"x"},"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Named parameters do not match"},"id":1}`)
	f(`{"jsonrpc":"2.0","method":"which","params":{"command":1},"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Parameter 'command' must be a string"},"id":1}`)
	f(`{"jsonrpc":"2.0","method":"which","params":["a","b"],"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":1}`)
}

// TestWhichMerged: with pass-through of everything, which lists OpenSIPS's
// commands (in its order) and then imcd's that OpenSIPS does not list, the
// 3.x names among them; OpenSIPS is asked at most once per whichTTL.
func TestWhichMerged(t *testing.T) {
	fake := startFake(t, false)
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	s.PassthroughAll = true
	opensips := resultNames(t, readWire(t, "mi/datagram/which_all.response.json"))
	for i := range 3 {
		req := `{"jsonrpc": "2.0", "id": "18587", "method": "which", "params": {}}`
		got := resultNames(t, s.Handle(context.Background(), []byte(req)))
		want := append(slices.Clone(opensips), "imc_list_rooms", "imc_list_members", "which")
		if !slices.Equal(got, want) {
			t.Fatalf("which #%d:\n got %q\nwant %q", i, got, want)
		}
	}
	if n := len(fake.CallsTo("which")); n != 1 {
		t.Errorf("OpenSIPS asked %d times for its list, want 1 (cached)", n)
	}
	// which about an OpenSIPS command is OpenSIPS's to answer.
	req := `{"jsonrpc":"2.0","method":"which","params":{"command":"imc_list_members"},"id":217}`
	if got := s.Handle(context.Background(), []byte(req)); string(got) != `{"jsonrpc":"2.0","result":[["room"]],"id":217}` {
		t.Errorf("which about an imcd command: %s", got)
	}
	if n := len(fake.CallsTo("which")); n != 1 {
		t.Errorf("which about imcd's own command was forwarded")
	}
}

// TestWhichAllowlist: with the default pass-through, which lists only the
// OpenSIPS commands imcd would forward (so opensips-cli offers nothing that
// would be refused), then imcd's own.
func TestWhichAllowlist(t *testing.T) {
	fake := startFake(t, false)
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	s.PassthroughAllow = []string{"usrloc:dump", "not:listed"}
	got := resultNames(t, s.Handle(context.Background(), []byte(`{"jsonrpc":"2.0","method":"which","id":1}`)))
	want := []string{"statistics:get", "statistics:list", "core:uptime", "core:version", "core:which", "core:ps", "core:help",
		"evi:list", "evi:subscribers", "usrloc:dump",
		"imc:list_rooms", "imc_list_rooms", "imc:list_members", "imc_list_members", "which"}
	if !slices.Equal(got, want) {
		t.Fatalf("which:\n got %q\nwant %q", got, want)
	}
}

// TestWhichOpenSIPSDown: when OpenSIPS does not answer, which lists imcd's
// own commands, quickly enough for opensips-cli's 1 s timeout, and does not
// wait again for a while.
func TestWhichOpenSIPSDown(t *testing.T) {
	fake := startFake(t, true)
	s := newServer(t, state(t, stateInitial), nil)
	s.Forward = udpForwarder{fake.MIAddr()}
	req := []byte(`{"jsonrpc": "2.0", "id": "9008", "method": "which", "params": {}}`)
	start := time.Now()
	got := resultNames(t, s.Handle(context.Background(), req))
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("which took %s with OpenSIPS down", d)
	}
	if !slices.Equal(got, append(s.Registry.Names(), "core:which", "which")) {
		t.Errorf("which with OpenSIPS down: %q", got)
	}
	start = time.Now()
	s.Handle(context.Background(), req)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("second which waited %s for a down OpenSIPS", d)
	}
	if n := len(fake.CallsTo("which")); n != 1 {
		t.Errorf("OpenSIPS asked %d times, want 1", n)
	}
}
