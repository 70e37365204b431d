package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestMITransports asks the running imcd for imc_list_rooms the way
// opensips-cli does on each transport (the captured bytes) and checks
// `which` merges OpenSIPS's list, so opensips-cli accepts the legacy name.
func TestMITransports(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	const rooms = `"result":{"ROOMS":[{"URI":"sip:chat-1@127.0.0.1","MEMBERS":1,"OWNER":"sip:alice@127.0.0.1"}]}`

	// datagram: which, then the command, from a new socket each (as the CLI).
	which := p.mi(t, `{"jsonrpc": "2.0", "id": "18587", "method": "which", "params": {}}`)
	for _, name := range []string{`"imc_list_rooms"`, `"imc:list_rooms"`, `"imc_list_members"`, `"evi:subscribers"`, `"core:uptime"`} {
		if !strings.Contains(which, name) {
			t.Errorf("which lacks %s: %s", name, which)
		}
	}
	// What mi_passthrough = allowlist keeps from OpenSIPS is not offered.
	for _, name := range []string{`"tm:uac_dlg"`, `"evi:subscribe"`, `"core:kill"`} {
		if strings.Contains(which, name) {
			t.Errorf("which lists %s, which is not forwarded: %s", name, which)
		}
	}
	if got := p.mi(t, `{"jsonrpc": "2.0", "id": "4306", "method": "imc_list_rooms", "params": {}}`); got != `{"jsonrpc":"2.0",`+rooms+`,"id":"4306"}` {
		t.Errorf("datagram imc_list_rooms: %s", got)
	}

	// HTTP, with the CLI's headers.
	req, _ := http.NewRequest("POST", "http://"+p.miHTTP+"/mi", strings.NewReader(`{"jsonrpc": "2.0", "id": "25895", "method": "imc_list_rooms", "params": {}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Python-urllib/3.11")
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"jsonrpc":"2.0",`+rooms+`,"id":"25895"}` {
		t.Errorf("http imc_list_rooms: %d %s", resp.StatusCode, body)
	}

	// FIFO: ":reply_name:json" into imcd's FIFO, the reply from reply_name in its directory.
	reply := "opensips_fifo_reply_1_2_3"
	replyPath := filepath.Join(filepath.Dir(p.fifo), reply)
	if err := syscall.Mkfifo(replyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	wait := awaitFIFOReply(replyPath)
	w, err := os.OpenFile(p.fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(":" + reply + `:{"jsonrpc": "2.0", "id": "6447", "method": "imc_list_rooms", "params": {}}` + "\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, ok := wait(5 * time.Second)
	if !ok {
		t.Fatal("no FIFO reply")
	}
	if string(b) != `{"jsonrpc":"2.0",`+rooms+`,"id":"6447"}` {
		t.Errorf("fifo imc_list_rooms: %s", b)
	}
}

// TestMIPassThrough: a command imcd does not own reaches OpenSIPS's MI and
// its answer (errors included) comes back verbatim.
func TestMIPassThrough(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	got := p.mi(t, `{"jsonrpc":"2.0","method":"subscribers_list","params":{"event":"E_NOPE"},"id":18}`)
	if got != `{"jsonrpc":"2.0","error":{"code":404,"message":"Event not published"},"id":18}` {
		t.Errorf("subscribers_list E_NOPE: %s", got)
	}
	got = p.mi(t, `{"jsonrpc":"2.0","method":"subscribers_list","params":{"event":"E_IMC_MESSAGE"},"id":7}`)
	if !strings.Contains(got, `"socket":"`+p.events+`"`) || !strings.HasSuffix(got, `"id":7}`) {
		t.Errorf("subscribers_list: %s", got)
	}
	for _, c := range f.Calls() {
		if c.Crash {
			t.Errorf("imcd sent OpenSIPS a request that crashes mi_datagram: %s", c.Raw)
		}
	}
	// A batch is refused by imcd itself, never forwarded.
	if got := p.mi(t, `[{"jsonrpc":"2.0","method":"which","id":1}]`); !strings.Contains(got, `"code":-32600`) {
		t.Errorf("batch: %s", got)
	}
	if f.Crashes() != 0 {
		t.Errorf("%d crashing requests reached OpenSIPS", f.Crashes())
	}
}

// TestMIAdminNotifies: an operator's imc:add_member goes through the same
// engine, store and delivery as a SIP #add (the room policy off: the room
// is "ops"; security_test.go holds the operator to the policy).
func TestMIAdminNotifies(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{`room_prefix = ""`}})
	f.Reset()
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc:create_room","params":{"room":"sip:ops@127.0.0.1","owner":"sip:alice@127.0.0.1"},"id":1}`); got != `{"jsonrpc":"2.0","result":"OK","id":1}` {
		t.Fatalf("create_room: %s", got)
	}
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc:add_member","params":{"room":"sip:ops@127.0.0.1","user":"sip:bob@127.0.0.1"},"id":2}`); got != `{"jsonrpc":"2.0","result":"OK","id":2}` {
		t.Fatalf("add_member: %s", got)
	}
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc:add_member","params":{"room":"sip:nope@127.0.0.1","user":"sip:bob@127.0.0.1"},"id":3}`); !strings.HasPrefix(got, `{"jsonrpc":"2.0","error":{"code":404,"message":"no such room"`) {
		t.Errorf("add_member to a missing room: %s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	var lines []string
	for _, d := range f.Deliveries() {
		if d.From != "sip:ops@127.0.0.1" {
			t.Errorf("notice from %s", d.From)
		}
		lines = append(lines, d.To+": "+d.Body)
	}
	sort.Strings(lines)
	want := []string{
		"sip:alice@127.0.0.1: *** <sip:bob@127.0.0.1> has joined the room",
		"sip:alice@127.0.0.1: *** room was created",
		"sip:bob@127.0.0.1: *** <sip:bob@127.0.0.1> has joined the room",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		// The added user may also be told who added them.
		t.Logf("deliveries:\n%s", strings.Join(lines, "\n"))
		for _, w := range want {
			found := false
			for _, l := range lines {
				found = found || l == w
			}
			if !found {
				t.Errorf("missing delivery %q", w)
			}
		}
	}
}

// TestCapturedEventsReplay sends every captured event_datagram datagram, byte
// for byte, to a running imcd: none may crash it; those that are valid
// E_IMC_MESSAGE events are handled, the others counted as decode errors.
func TestCapturedEventsReplay(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{transport: "datagram"})
	files, _ := filepath.Glob("../../testdata/opensips-wire/events/datagram/*.json")
	if len(files) < 15 {
		t.Fatalf("only %d captured events", len(files))
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.RaiseRaw(p.events, b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The stream capture too, over event_stream, split at arbitrary points.
	deadline := time.Now().Add(5 * time.Second)
	for p.metric(t, `opensips_imc_events_total{result="ok",transport="datagram"}`)+
		p.metric(t, `opensips_imc_events_total{result="decode_error",transport="datagram"}`) < float64(len(files)) {
		if time.Now().After(deadline) {
			t.Fatalf("events counted: %s", grepMetrics(p, "opensips_imc_events_total"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := p.metric(t, `opensips_imc_events_total{result="decode_error",transport="datagram"}`); v != 1 {
		t.Errorf("decode errors: %g, want 1 (the array-params event 17)", v)
	}
	// 01 created chat-1 (alice), 15 chat-2; the rest were chat lines from
	// chat-1's only member. An event is counted once taken, a command's
	// change once committed: wait for the commits.
	for {
		got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":1}`)
		if strings.Contains(got, `"URI":"sip:chat-1@127.0.0.1"`) && strings.Contains(got, `"URI":"sip:chat-2@127.0.0.1"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rooms after the replay: %s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := p.get("/healthz"); code != 200 {
		t.Fatal("imcd is not healthy after the replay")
	}
}

func grepMetrics(p *proc, prefix string) string {
	_, body := p.get("/metrics")
	var b bytes.Buffer
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
