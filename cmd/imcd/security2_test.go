package main

// End-to-end tests of issue 19 (docs/security.md): what a local process,
// a pending invitee and a flood could still do, each on the real binary.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
	"github.com/imcd-sip/imcd/pkg/store"
)

// fifoMI sends one request through imcd's MI FIFO, as opensips-cli does
// (":reply_name:json", the reply read from reply_name in the FIFO's
// directory), and returns the reply.
func (p *proc) fifoMI(t *testing.T, name, req string) string {
	t.Helper()
	replyPath := filepath.Join(filepath.Dir(p.fifo), name)
	if err := syscall.Mkfifo(replyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(replyPath)
	got := make(chan string, 1)
	go func() {
		r, err := os.OpenFile(replyPath, os.O_RDONLY, 0)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(r)
		r.Close()
		got <- string(b)
	}()
	w, err := os.OpenFile(p.fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Write([]byte(":" + name + ":" + req + "\n"))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		return b
	case <-time.After(5 * time.Second):
		// Unblock the reader before giving up.
		if u, err := os.OpenFile(replyPath, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			u.Close()
		}
		t.Fatalf("no FIFO reply to %s", req)
		return ""
	}
}

// miAll sends req over imcd's datagram, HTTP and FIFO MI and returns the
// three replies, by transport.
func (p *proc) miAll(t *testing.T, req string) map[string]string {
	t.Helper()
	_, body := httpRaw(t, p, miPost("127.0.0.1", req, "Content-Type: application/json"))
	return map[string]string{
		"datagram": p.mi(t, req),
		"http":     body,
		"fifo":     p.fifoMI(t, "imcd_sec_reply", req),
	}
}

// TestMIPassthroughReadAsOpenSIPS (issue 19, 1): the requests that made a
// real OpenSIPS run what the allowlist refuses, because OpenSIPS reads
// keys in any case and takes the first match while imcd forwarded the
// bytes it was sent. Over every transport each is refused by imcd
// (-32600, saying why), and OpenSIPS (the fake, which records what it is
// asked to run the way OpenSIPS reads it) gets none of them.
func TestMIPassthroughReadAsOpenSIPS(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	for _, m := range []string{"core:uptime", "core:log_level", "core:kill", "which"} {
		f.Handle(m, func([]byte) ([]byte, *jsonrpc.Error) { return []byte(`"done"`), nil })
	}
	p := startIMCD(t, f, procOpts{})
	f.Reset()
	for _, c := range []struct{ req, data string }{
		{`{"jsonrpc":"2.0","Method":"core:log_level","method":"core:uptime","params":[3],"id":2}`,
			`key \"Method\" differs from \"method\"`},
		{`{"jsonrpc":"2.0","METHOD":"tm:uac_dlg","PARAMS":{"method":"MESSAGE","ruri":"sip:bob@127.0.0.1","headers":"From: <sip:ceo@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n","body":"wire the money"},"method":"core:uptime","params":[],"id":3}`,
			`key \"METHOD\" differs from \"method\"`},
		{`{"jsonrpc":"2.0","METHOD":"core:kill","method":"which","params":{"command":"core:uptime"},"id":4}`,
			`key \"METHOD\" differs from \"method\"`},
		{`{"jsonrpc":"2.0","method":"which","params":{"COMMAND":"core:kill","command":"core:uptime"},"id":5}`,
			`params: key \"COMMAND\" differs from \"command\"`},
		{`{"jsonrpc":"2.0","METHOD":1,"method":"core:uptime","id":6}`, `key \"METHOD\" differs from \"method\"`},
		{`{"jsonrpc":"2.0","method":"core:uptime","method":"core:kill","id":7}`, `key \"method\" appears twice`},
	} {
		id := c.req[strings.LastIndex(c.req, `"id":`)+5 : len(c.req)-1]
		want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"` + c.data
		for transport, got := range p.miAll(t, c.req) {
			if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, `"},"id":`+id+`}`) {
				t.Errorf("%s %s:\n got %s\nwant %s...", transport, c.req, got, want)
			}
		}
	}
	for _, m := range []string{"core:log_level", "tm:uac_dlg", "core:kill", "core:uptime"} {
		if calls := f.CallsTo(m); len(calls) != 0 {
			t.Errorf("OpenSIPS was made to run %s: %s", m, calls[0].Raw)
		}
	}
	if f.Crashes() != 0 || len(f.Deliveries()) != 0 {
		t.Errorf("OpenSIPS got %d requests that crash mi_datagram, %d MESSAGEs", f.Crashes(), len(f.Deliveries()))
	}
	// What the allowlist lets through still goes, rebuilt: what OpenSIPS
	// receives names the command imcd checked.
	if got := p.mi(t, `{"id":8,"params":[],"method":"core:uptime","jsonrpc":"2.0","x":{"method":"core:kill"}}`); got != `{"jsonrpc":"2.0","result":"done","id":8}` {
		t.Errorf("core:uptime: %s", got)
	}
	calls := f.CallsTo("core:uptime")
	if len(calls) != 1 || string(calls[0].Raw) != `{"jsonrpc":"2.0","method":"core:uptime","params":[],"id":8}` {
		t.Errorf("core:uptime reached OpenSIPS %d times: %q", len(calls), received(calls))
	}
}

// TestEventStreamBounds (issue 19, 2): 200 loopback connections each
// holding an unfinished event of 250 KiB all stayed open (RSS 54 -> 108
// MB, goroutines 51 -> 251). Now each is refused (event_max_connections)
// or closed once event_frame_timeout passes, imcd's goroutines and memory
// stay bounded meanwhile, and OpenSIPS's own connection goes on.
func TestEventStreamBounds(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{"event_frame_timeout = 1s"}})
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	goroutines0 := p.metric(t, "go_goroutines")
	rss0 := p.metric(t, "process_resident_memory_bytes")

	addr := strings.TrimPrefix(p.events, "tcp:")
	frame := []byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:x@127.0.0.1","body":"` + strings.Repeat("x", 250<<10))
	const conns = 200
	var wg sync.WaitGroup
	closed := make(chan struct{}, conns)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			go c.Write(frame) // blocks while imcd does not read: ends when it closes
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.Copy(io.Discard, c); err == nil || !os.IsTimeout(err) {
				closed <- struct{}{} // EOF or reset: imcd closed it
			}
		}()
	}
	var peakG, peakRSS float64
	deadline := time.Now().Add(60 * time.Second)
	for len(closed) < conns && time.Now().Before(deadline) {
		peakG = max(peakG, p.metric(t, "go_goroutines"))
		peakRSS = max(peakRSS, p.metric(t, "process_resident_memory_bytes"))
		time.Sleep(20 * time.Millisecond) // a sampling period, not an assertion
	}
	t.Logf("goroutines %v -> peak %v, RSS %.0f MB -> peak %.0f MB", goroutines0, peakG, rss0/(1<<20), peakRSS/(1<<20))
	if peakG > goroutines0+30 {
		t.Errorf("goroutines %v -> %v: not bounded by event_max_connections (16)", goroutines0, peakG)
	}
	if grew := (peakRSS - rss0) / (1 << 20); grew > 50 {
		t.Errorf("RSS grew by %.0f MB (from %.0f MB): unfinished events are not bounded", grew, rss0/(1<<20))
	}
	if n := len(closed); n != conns {
		t.Fatalf("%d of %d connections holding an unfinished event are still open", conns-n, conns)
	}
	wg.Wait()
	refused := p.metric(t, `opensips_imc_events_total{result="too_many_connections",transport="stream"}`)
	timedOut := p.metric(t, `opensips_imc_events_total{result="frame_timeout",transport="stream"}`)
	if refused+timedOut != conns || timedOut == 0 {
		t.Errorf("counted %v refused and %v timed out, want %d in all", refused, timedOut, conns)
	}
	if !strings.Contains(p.log.String(), "too many event_stream connections") || !strings.Contains(p.log.String(), "frame not finished in time") {
		t.Error("the refusals are not logged")
	}
	// OpenSIPS's connection was never touched.
	step(t, f, alice, room1, room1, "#list", want{to: alice, body: "Members:\n*" + alice, reply: true})
}

// TestIDsAreValidJSON (issue 19, 3): a string id with control characters
// came back as "\x01", which is not JSON. Every reply imcd writes (its MI
// over datagram, HTTP and FIFO, answers or errors, and event_stream's
// reliable-mode answers) is valid JSON by encoding/json and carries the
// id that was sent.
func TestIDsAreValidJSON(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	f.Handle("core:uptime", func([]byte) ([]byte, *jsonrpc.Error) { return []byte(`{"Up since":"now"}`), nil })
	p := startIMCD(t, f, procOpts{})
	ids := []string{`"\u0001"`, `"\u0000"`, `"a\u001fb\"c\\d"`, `"\n\r\t\b\f"`, `"\ud83c\udf89 caf\u00e9"`}
	sameID := func(what, id string, reply []byte) {
		t.Helper()
		if err := opensipstest.CheckReplyID(reply, id); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	for _, id := range ids {
		for _, req := range []string{
			`{"jsonrpc":"2.0","method":"imc_list_rooms","id":` + id + `}`,
			`{"jsonrpc":"2.0","method":"imc:list_members","params":{"room":"sip:chat-9@127.0.0.1"},"id":` + id + `}`,
			`{"jsonrpc":"2.0","method":"which","id":` + id + `}`,
			`{"jsonrpc":"2.0","method":"core:uptime","id":` + id + `}`,
			`{"jsonrpc":"2.0","method":"core:kill","id":` + id + `}`,
			`{"jsonrpc":"2.0","METHOD":"x","method":"core:uptime","id":` + id + `}`,
		} {
			for transport, reply := range p.miAll(t, req) {
				sameID(transport+" "+req, id, []byte(reply))
			}
		}
	}
	// event_stream in reliable mode, on a connection of our own.
	c, err := net.Dial("tcp", strings.TrimPrefix(p.events, "tcp:"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dec := json.NewDecoder(bufio.NewReader(c))
	for i, id := range ids {
		ev := opensipstest.NewEvent(alice, room1, "#rooms")
		for _, frame := range []string{
			strings.Replace(string(ev.AppendJSON(nil, "E_IMC_MESSAGE", 1, "opensips_event")), `"id":1,`, `"id":`+id+`,`, 1),
			`{"id":` + id + `,"jsonrpc":"2.0","method":"E_OTHER","params":{}}`,
			`{"id":` + id + `,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"body":"no from"}}`,
		} {
			if _, err := io.WriteString(c, frame); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("event_stream answer %d to %s: not JSON: %v", i, frame, err)
			}
			sameID("event_stream "+frame, id, raw)
		}
	}
}

// TestInviteeCannotReadPrivateRoom (issue 19, 4): a pending invitee read a
// private room's topic. Every command that reads the room now gives them
// what a stranger gets: nothing of the room, and the request to accept
// first.
func TestInviteeCannotReadPrivateRoom(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	startIMCD(t, f, procOpts{extra: []string{"history = on"}})
	step(t, f, alice, room1, room1, "#create chat-1 private", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, alice, room1, room1, "#topic the secret plan",
		want{to: alice, body: "*** <" + alice + "> set the topic: the secret plan", reply: true})
	step(t, f, alice, room1, room1, "the plan is on") // a room of one: goes to nobody, kept in the history
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(alice, room1, "#invite bob")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, 2); err != nil { // the invitation, and alice told
		t.Fatal(err)
	}
	accept := "You are invited to " + room1 + " but have not joined yet: send '#accept' first"
	for _, cmd := range []string{"#topic", "#subject", "#history", "#history 10", "#list", "#members", "a line"} {
		step(t, f, bob, room1, room1, cmd, want{to: bob, body: accept, reply: true})
	}
	step(t, f, bob, "sip:chat-manager@127.0.0.1", "sip:chat-manager@127.0.0.1", "#rooms",
		want{to: bob, body: "Rooms:\n" + room1 + " (private, invited)", reply: true})
	for _, d := range f.Deliveries() {
		if d.To == bob && strings.Contains(d.Body, "secret") {
			t.Errorf("bob, invited, read %q", d.Body)
		}
	}
	// Once accepted, bob reads the room: the topic and the last lines.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(bob, room1, "#accept")); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"Topic: the secret plan", "the plan is on"} {
		for !slices.ContainsFunc(f.Deliveries(), func(d opensipstest.Delivery) bool { return d.To == bob && strings.Contains(d.Body, what) }) {
			if ctx.Err() != nil {
				t.Fatalf("bob, a member now, did not get %q: %v", what, summarize(f.Deliveries()))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestEventSourcesExplicit (issue 19, 5): an empty event_sources accepted
// events from any address without a word. It now stops imcd at start,
// saying why and what to write instead; * accepts every address and is
// logged as a warning.
func TestEventSourcesExplicit(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	code, log := runToExit(t, t.TempDir(), "opensips_mi = "+f.MISocket(), "event_sources =")
	if code != exitConfig || !strings.Contains(log, "event_sources") || !strings.Contains(log, "say so with *") {
		t.Errorf("event_sources = (empty): exit %d, log:\n%s", code, log)
	}
	p := startIMCD(t, f, procOpts{extra: []string{"event_sources = *"}})
	if !strings.Contains(p.log.String(), "event_sources = *: events are accepted from any address") {
		t.Errorf("no warning for event_sources = *:\n%s", p.log.String())
	}
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
}

// TestFanoutBurstHolds (issue 19, 6): one member of a 500-member room
// sending 20 lines at once made imcd send 5,320 to 7,984 MESSAGEs before
// anything was refused (fanout_burst 4,000): every line passed the intake
// check before the first was charged. Now at most fanout_burst plus one
// line's fan-out (499) go out; the rest is dropped, the sender told once.
func TestFanoutBurstHolds(t *testing.T) {
	const members, lines, burst = 500, 20, 4000
	dir := t.TempDir()
	seedRoom(t, dir, room1, members)
	f := opensipstest.New(t, opensipstest.Options{})
	// fanout_limit 1/s: nothing worth counting refills during the test.
	p := startIMCD(t, f, procOpts{dir: dir, extra: []string{"fanout_limit = 1", fmt.Sprintf("fanout_burst = %d", burst)}})
	f.Reset()
	var stream []byte
	for i := range lines {
		ev := opensipstest.NewEvent(alice, room1, fmt.Sprintf("line %d", i))
		stream = ev.AppendJSON(stream, "E_IMC_MESSAGE", 0, "")
	}
	if err := f.RaiseRaw(p.events, stream); err != nil { // all 20 in one write
		t.Fatal(err)
	}
	// Then two other members speak: per member, notices go out in order,
	// so once each member has one of their lines, every line of alice's
	// that was sent has arrived.
	for _, m := range []string{"sip:m1@127.0.0.1", "sip:m2@127.0.0.1"} {
		if _, err := f.Raise(opensipstest.NewEvent(m, room1, "after")); err != nil {
			t.Fatal(err)
		}
	}
	// count counts alice's lines delivered, the members who heard a line
	// after, and how often alice was told.
	count := func() (sent, heard, told int) {
		after := map[string]bool{}
		for _, d := range f.Deliveries() {
			switch {
			case strings.HasPrefix(d.Body, "<alice@127.0.0.1>: line "):
				sent++
			case strings.HasSuffix(d.Body, ">: after"):
				after[d.To] = true
			case d.To == alice && d.Body == imc.TxtRateLimited:
				told++
			}
		}
		return sent, len(after), told
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sent, heard, told := count()
	for (heard < members || told == 0) && sent <= burst+members-1 {
		if ctx.Err() != nil {
			t.Fatalf("waiting: %d MESSAGEs of alice's lines, %d members heard the lines after, alice told %d times", sent, heard, told)
		}
		time.Sleep(20 * time.Millisecond)
		sent, heard, told = count()
	}
	t.Logf("%d lines of %d members: %d MESSAGEs sent before the refusal (fanout_burst %d)", lines, members, sent, burst)
	if sent > burst+members-1 || sent < burst || told != 1 {
		t.Errorf("%d MESSAGEs sent, want from %d to %d (fanout_burst plus one line's fan-out); alice told %d times, want once",
			sent, burst, burst+members-1, told)
	}
}

// received returns the raw requests of calls.
func received(calls []opensipstest.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, string(c.Raw))
	}
	return out
}

// seedRoom writes a room of n members (alice the owner, then m1...) into
// the embedded SQLite database of data_dir dir, before imcd starts: a
// room that size made by #join would cost imcd n²/2 MESSAGEs.
func seedRoom(t *testing.T, dir, room string, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: "sqlite://" + filepath.Join(dir, "imcd.db"), CreateTables: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := imc.ParseURI(room)
	if err != nil {
		t.Fatal(err)
	}
	member := func(user string) imc.URI { return imc.URI{User: user, Host: "127.0.0.1"} }
	changes := []imc.Change{{Op: imc.OpCreateRoom, Room: r}, {Op: imc.OpAddMember, Room: r, Member: member("alice"), MemberFlags: imc.MemberOwner}}
	for i := 1; i < n; i++ {
		changes = append(changes, imc.Change{Op: imc.OpAddMember, Room: r, Member: member(fmt.Sprintf("m%d", i))})
	}
	if err := db.Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
}

// TestRoomNameBeyondPrefix (issue 19, 7): "#create chat-" created
// sip:chat-@domain. The prefix alone names no room, however it is asked
// for: a reply says so and nothing is created.
func TestRoomNameBeyondPrefix(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	const mgr, bare = "sip:chat-manager@127.0.0.1", "sip:chat-@127.0.0.1"
	refusal := "Room " + bare + " not created: a room name needs more than 'chat-', as in '#create chat-team'"
	step(t, f, alice, mgr, mgr, "#create chat-", want{to: alice, body: refusal, reply: true})
	step(t, f, alice, mgr, mgr, "#create chat- private", want{to: alice, body: refusal, reply: true})
	step(t, f, alice, mgr, mgr, "#join chat-", want{to: alice, body: refusal, reply: true})
	step(t, f, alice, mgr, mgr, "#create "+bare, want{to: alice, body: refusal, reply: true})
	step(t, f, alice, bare, bare, "#join", want{to: alice, body: refusal, reply: true})
	step(t, f, alice, bare, bare, "#create chat-", want{to: alice, body: refusal, reply: true})
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc:create_room","params":{"room":"`+bare+`","owner":"`+alice+`"},"id":1}`); !strings.Contains(got, "a room name needs more than 'chat-'") {
		t.Errorf("imc:create_room %s: %s", bare, got)
	}
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":2}`); strings.Contains(got, "URI") {
		t.Errorf("a room was created: %s", got)
	}
	step(t, f, alice, mgr, "sip:chat-a@127.0.0.1", "#create chat-a", want{to: alice, body: "*** room was created", reply: true})
}
