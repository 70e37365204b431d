package mi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// wire is the copy of the OpenSIPS captures.
const wire = "../../testdata/opensips-wire"

func readWire(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wire, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustURI(t testing.TB, s string) imc.URI {
	t.Helper()
	u, err := imc.ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// room builds a room whose first member is the owner.
func room(t testing.TB, uri string, owner string, members ...string) *imc.Room {
	t.Helper()
	ms := []imc.Member{{URI: mustURI(t, owner), Flags: imc.MemberOwner}}
	for _, m := range members {
		ms = append(ms, imc.Member{URI: mustURI(t, m)})
	}
	return imc.NewRoom(mustURI(t, uri), 0, ms)
}

func roomsOf(rs ...*imc.Room) *imc.Rooms {
	set := imc.NewRooms()
	for _, r := range rs {
		set.Put(r)
	}
	return set
}

// The states the captures were taken in.
const (
	stateInitial    = "initial"    // native-1 (alice owner, dave, carol, bob), native-2 (bob owner, carol)
	stateRestarted  = "restarted"  // the same after a restart: non-owner order reversed
	stateEmpty      = "empty"      // no rooms
	stateTranscript = "transcript" // after the imc-native transcript
	stateCLI        = "cli"        // the opensips-cli captures' fake: chat-1 (alice owner, bob)
)

func state(t testing.TB, name string) *imc.Rooms {
	t.Helper()
	const a, b, c, d = "sip:alice@127.0.0.1", "sip:bob@127.0.0.1", "sip:carol@127.0.0.1", "sip:dave@127.0.0.1"
	switch name {
	case stateInitial:
		return roomsOf(room(t, "sip:native-1@127.0.0.1", a, d, c, b), room(t, "sip:native-2@127.0.0.1", b, c))
	case stateRestarted:
		return roomsOf(room(t, "sip:native-1@127.0.0.1", a, b, c, d), room(t, "sip:native-2@127.0.0.1", b, c))
	case stateEmpty:
		return imc.NewRooms()
	case stateTranscript:
		// The native module created a room literally named
		// "sip:native-1@127.0.0.1": a row imc's parser would refuse.
		bogus := imc.NewRoom(imc.URI{User: "sip:native-1@127.0.0.1", Host: "127.0.0.1"}, 0,
			[]imc.Member{{URI: mustURI(t, a), Flags: imc.MemberOwner}})
		return roomsOf(bogus, room(t, "sip:native-3@127.0.0.1", a))
	case stateCLI:
		return roomsOf(room(t, "sip:chat-1@127.0.0.1", a, b))
	}
	t.Fatalf("no state %q", name)
	return nil
}

// newServer returns a server with the imc commands over rooms (and the
// admin commands when admin is not nil).
func newServer(t testing.TB, rooms imc.View, admin Admin) *Server {
	t.Helper()
	reg := NewRegistry()
	for _, c := range IMCCommands(rooms, admin) {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return &Server{Registry: reg, Logger: testLogger}
}

// canonical parses a JSON reply into plain values with ROOMS sorted by URI,
// so that replies listing the same rooms in another order compare equal
// (same keys, same types, same values).
func canonical(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, b)
	}
	sortRoomsJSON(v)
	return v
}

func sortRoomsJSON(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if a, ok := e.([]any); ok && k == "ROOMS" {
				sort.Slice(a, func(i, j int) bool {
					return a[i].(map[string]any)["URI"].(string) < a[j].(map[string]any)["URI"].(string)
				})
			}
			sortRoomsJSON(e)
		}
	case []any:
		for _, e := range x {
			sortRoomsJSON(e)
		}
	}
}

func sameJSON(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !reflect.DeepEqual(canonical(t, got), canonical(t, want)) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// resultNames returns the result of a which reply as a list of names.
func resultNames(t testing.TB, reply []byte) []string {
	t.Helper()
	var r struct {
		Result []string `json:"result"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		t.Fatalf("which reply %s: %v", reply, err)
	}
	return r.Result
}

// rawID returns the id of a JSON-RPC message as encoded.
func rawID(t testing.TB, msg []byte) string {
	t.Helper()
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(msg, &m); err != nil || m.ID == nil {
		t.Fatalf("no id in %s (%v)", msg, err)
	}
	return string(m.ID)
}

// fakeAdmin is the daemon's side of the admin commands.
type fakeAdmin struct {
	AdminFunc func(ctx context.Context, op imc.AdminOp) error
}

func (f *fakeAdmin) Admin(ctx context.Context, op imc.AdminOp) error { return f.AdminFunc(ctx, op) }

var _ Admin = (*fakeAdmin)(nil)

// recordingAdmin returns a fakeAdmin that records ops and answers err.
func recordingAdmin(err error) (*fakeAdmin, func() []imc.AdminOp) {
	var mu sync.Mutex
	var ops []imc.AdminOp
	return &fakeAdmin{AdminFunc: func(_ context.Context, op imc.AdminOp) error {
			mu.Lock()
			defer mu.Unlock()
			ops = append(ops, op)
			return err
		}}, func() []imc.AdminOp {
			mu.Lock()
			defer mu.Unlock()
			return append([]imc.AdminOp(nil), ops...)
		}
}

// fakeForwarder is OpenSIPS's MI as the Server sees it.
type fakeForwarder struct {
	ForwardFunc func(ctx context.Context, req []byte) ([]byte, error)
}

func (f *fakeForwarder) Forward(ctx context.Context, req []byte) ([]byte, error) {
	return f.ForwardFunc(ctx, req)
}

var _ Forwarder = (*fakeForwarder)(nil)

// within fails the test if fn does not return within d.
func within(t testing.TB, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: not done within %s", what, d)
	}
}

// replyID extracts the request name from a capture file name.
func captureName(path string) string {
	base := filepath.Base(path)
	return base[:strings.IndexByte(base, '.')]
}

// testLogger is nil (discard) unless a debugging file sets it.
var testLogger *slog.Logger

// startFake starts the fake OpenSIPS of pkg/opensipstest answering every
// captured MI request with its captured reply; a silent one answers
// nothing (its MI process is stuck).
func startFake(t *testing.T, silent bool) *opensipstest.Server {
	t.Helper()
	f := opensipstest.New(t, opensipstest.Options{})
	if err := f.ReplayCaptured(filepath.Join(wire, "mi/datagram")); err != nil {
		t.Fatal(err)
	}
	f.SetSilent(silent)
	return f
}

// received returns every request the fake got, in order.
func received(f *opensipstest.Server) [][]byte {
	var out [][]byte
	for _, c := range f.Calls() {
		out = append(out, c.Raw)
	}
	return out
}

// udpForwarder sends each request from its own socket, like the simplest
// MI client, and waits for the reply unless the request is a notification.
type udpForwarder struct{ addr string }

func (u udpForwarder) Forward(ctx context.Context, req []byte) ([]byte, error) {
	var p fastjson.Parser
	m, err := jsonrpc.Decode(&p, req)
	if err != nil {
		return nil, errors.New("fake client: refusing to forward an undecodable request")
	}
	conn, err := net.Dial("udp", u.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	if m.IsNotification() {
		return nil, nil
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

var _ Forwarder = udpForwarder{}
