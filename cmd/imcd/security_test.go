package main

// End-to-end tests of what a hostile web page, SIP user or local process
// could do before issue 12 (docs/security.md), each on the real binary.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// httpRaw writes raw to imcd's HTTP MI and reads one response.
func httpRaw(t *testing.T, p *proc, raw string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", p.miHTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// miPost is a POST of body to /mi with the given Host and header lines.
func miPost(host, body string, headers ...string) string {
	return "POST /mi HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n" + strings.Join(append(headers, ""), "\r\n") +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// TestHTTPMIRefusesWebPages: the cross-site "simple" POST of the issue, a
// POST with a foreign Origin and one under a rebinding name change nothing;
// opensips-cli's captured request is still answered.
func TestHTTPMIRefusesWebPages(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	destroy := `{"jsonrpc":"2.0","method":"imc:destroy_room","params":{"room":"` + room1 + `"},"id":1}`
	kill := `{"jsonrpc":"2.0","method":"core:kill","id":2}`
	f.Reset()
	for _, c := range []struct {
		raw    string
		status int
		says   string
	}{
		{miPost("127.0.0.1:8889", destroy, "Content-Type: text/plain", "Origin: http://evil.example"), 403, "mi_http_origins"},
		{miPost("127.0.0.1:8889", kill, "Content-Type: text/plain;charset=UTF-8", "Origin: http://evil.example"), 403, "mi_http_origins"},
		{miPost("127.0.0.1:8889", destroy, "Content-Type: application/json", "Origin: http://evil.example"), 403, "mi_http_origins"},
		{miPost("127.0.0.1:8889", destroy, "Content-Type: text/plain"), 415, "application/json"},
		{miPost("rebind.evil.example:8889", destroy, "Content-Type: application/json"), 421, "mi_http_hosts"},
	} {
		code, body := httpRaw(t, p, c.raw)
		if code != c.status || !strings.Contains(body, `"code":-32600`) || !strings.Contains(body, c.says) {
			t.Errorf("%q: %d %s, want %d naming %s", c.raw, code, body, c.status, c.says)
		}
	}
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":3}`); !strings.Contains(got, room1) {
		t.Errorf("a refused request destroyed the room: %s", got)
	}
	if n := len(f.Calls()); n != 0 || len(f.Deliveries()) != 0 {
		t.Errorf("refused requests reached OpenSIPS: %d calls, deliveries %v", n, summarize(f.Deliveries()))
	}
	// opensips-cli, byte for byte (its Host names another port: ports are
	// not compared).
	raw, err := os.ReadFile("../../testdata/opensips-wire/opensips-cli/sent-bytes/http-3-imc_list_rooms.req.http")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := httpRaw(t, p, string(raw)); code != 200 || !strings.Contains(body, room1) {
		t.Errorf("opensips-cli's request: %d %s", code, body)
	}
}

// TestMIPassthroughAllowlist: core:kill and core:log_level never reach
// OpenSIPS by default, over datagram or HTTP; core:uptime does. With
// mi_passthrough = all, core:kill does too.
func TestMIPassthroughAllowlist(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	f.Handle("core:uptime", func([]byte) ([]byte, *jsonrpc.Error) { return []byte(`{"Up since":"now"}`), nil })
	f.Handle("core:kill", func([]byte) ([]byte, *jsonrpc.Error) { return []byte(`"OK"`), nil })
	p := startIMCD(t, f, procOpts{})
	const refusal = `{"code":403,"message":"Not forwarded to OpenSIPS","data":"%s is not one of the commands imcd passes to OpenSIPS (mi_passthrough = allowlist): set mi_passthrough = all, or add it to mi_passthrough_allow"}`
	for _, m := range []string{"core:kill", "kill", "core:log_level", "log_level"} {
		want := `{"jsonrpc":"2.0","error":` + fmt.Sprintf(refusal, m) + `,"id":5}`
		if got := p.mi(t, `{"jsonrpc":"2.0","method":"`+m+`","params":{"level":4},"id":5}`); got != want {
			t.Errorf("datagram %s: %s", m, got)
		}
		if code, body := httpRaw(t, p, miPost("127.0.0.1", `{"jsonrpc":"2.0","method":"`+m+`","id":5}`, "Content-Type: application/json")); code != 200 || body != want {
			t.Errorf("http %s: %d %s", m, code, body)
		}
	}
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"core:uptime","id":6}`); got != `{"jsonrpc":"2.0","result":{"Up since":"now"},"id":6}` {
		t.Errorf("core:uptime: %s", got)
	}
	for _, m := range []string{"core:kill", "kill", "core:log_level", "log_level"} {
		if n := len(f.CallsTo(m)); n != 0 {
			t.Errorf("%s reached OpenSIPS %d times", m, n)
		}
	}
	if n := len(f.CallsTo("core:uptime")); n != 1 {
		t.Errorf("core:uptime reached OpenSIPS %d times, want 1", n)
	}

	all := startIMCD(t, f, procOpts{extra: []string{"mi_passthrough = all"}})
	if got := all.mi(t, `{"jsonrpc":"2.0","method":"core:kill","id":7}`); got != `{"jsonrpc":"2.0","result":"OK","id":7}` {
		t.Errorf("core:kill with mi_passthrough = all: %s", got)
	}
	if n := len(f.CallsTo("core:kill")); n != 1 {
		t.Errorf("core:kill reached OpenSIPS %d times with mi_passthrough = all, want 1", n)
	}
}

// TestRoomAndMemberPolicy: no room on a user's address or in a foreign
// domain, no member from a foreign domain; nothing leaves for the foreign
// addresses.
func TestRoomAndMemberPolicy(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	const mgr = "sip:chat-manager@127.0.0.1"
	step(t, f, alice, mgr, mgr, "#create alice", want{to: alice, reply: true,
		body: "Room sip:alice@127.0.0.1 not created: room names here start with 'chat-', as in '#create chat-team'"})
	step(t, f, bob, mgr, mgr, "#create sip:x@foreign.example", want{to: bob, reply: true,
		body: "Room sip:x@foreign.example not created: room names here start with 'chat-', as in '#create chat-team'"})
	step(t, f, bob, mgr, mgr, "#create sip:chat-x@foreign.example", want{to: bob, reply: true,
		body: "Room sip:chat-x@foreign.example not created: rooms can only be created in 127.0.0.1"})
	step(t, f, bob, mgr, mgr, "#join sip:support@127.0.0.1", want{to: bob, reply: true,
		body: "Room sip:support@127.0.0.1 not created: room names here start with 'chat-', as in '#create chat-team'"})
	step(t, f, alice, mgr, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, alice, room1, room1, "#add sip:x@foreign.example", want{to: alice, reply: true,
		body: "sip:x@foreign.example cannot be added: members of " + room1 + " must be in 127.0.0.1"})
	step(t, f, alice, room1, room1, "#invite sip:x@foreign.example", want{to: alice, reply: true,
		body: "sip:x@foreign.example cannot be invited: members of " + room1 + " must be in 127.0.0.1"})
	step(t, f, alice, room1, room1, "#add bob", want{to: alice, body: "*** <" + bob + "> has joined the room", reply: true},
		want{to: bob, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + alice + "> added you to the room"})
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc:add_member","params":{"room":"`+room1+`","user":"sip:y@foreign.example"},"id":1}`); !strings.Contains(got, `"code":403`) {
		t.Errorf("imc:add_member of a foreign user: %s", got)
	}
	if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":2}`); strings.Count(got, `"URI"`) != 1 {
		t.Errorf("rooms: %s", got)
	}

	// domains = * and member_domains = * give the native behaviour back.
	f2 := opensipstest.New(t, opensipstest.Options{})
	startIMCD(t, f2, procOpts{extra: []string{"domains = *", "member_domains = *"}})
	step(t, f2, carol, mgr, "sip:chat-x@foreign.example", "#create sip:chat-x@foreign.example",
		want{to: carol, body: "*** room was created", reply: true})
	step(t, f2, carol, "sip:chat-x@foreign.example", "sip:chat-x@foreign.example", "#add sip:x@other.example",
		want{to: carol, body: "*** <sip:x@other.example> has joined the room", reply: true},
		want{to: "sip:x@other.example", body: "*** <sip:x@other.example> has joined the room"},
		want{to: "sip:x@other.example", body: "*** <" + carol + "> added you to the room"})
}

// TestFIFOOfAnotherOwner: a FIFO another user created at mi_fifo beforehand
// (or a file of theirs) stops imcd at start with exit code 3 and a line
// saying why; imcd never serves it.
func TestFIFOOfAnotherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	f := opensipstest.New(t, opensipstest.Options{})
	run := func(make func(string) error, says string) {
		t.Helper()
		dir := t.TempDir()
		fifo := filepath.Join(dir, "imcd_fifo")
		if err := make(fifo); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(fifo, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		code, log := runToExit(t, dir, "opensips_mi = "+f.MISocket(), "mi_fifo = "+fifo)
		if code != 3 || !strings.Contains(log, "imcd cannot start") || !strings.Contains(log, says) {
			t.Errorf("exit %d, log:\n%s\nwant exit 3 saying %q", code, log, says)
		}
	}
	run(func(p string) error { return syscall.Mkfifo(p, 0o666) }, "FIFO owned by another user")
	run(func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) }, "is a regular file owned by uid 65534")
}

// runToExit runs imcd with the harness's configuration plus lines and
// returns its exit code and log; it must exit by itself within 20 s.
func runToExit(t *testing.T, dir string, lines ...string) (int, string) {
	t.Helper()
	conf := filepath.Join(dir, "imcd.conf")
	base := []string{"data_dir = " + dir, "event_listen = tcp:127.0.0.1:0", "mi_datagram = udp:127.0.0.1:0",
		"mi_http = 127.0.0.1:0", "metrics_listen = 127.0.0.1:0", "log_format = json"}
	if err := os.WriteFile(conf, []byte(strings.Join(append(base, lines...), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, imcdBin, "-config", conf).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("imcd: %v\n%s", err, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("imcd did not exit by itself:\n%s", out)
	}
	code := 0
	if exit != nil {
		code = exit.ExitCode()
	}
	return code, string(out)
}

// TestFanoutBudgetE2E: a member flooding a big room is stopped by what the
// lines cost (fanout_limit), long before the per-sender event rate would;
// told once, the rest dropped, the others unaffected.
func TestFanoutBudgetE2E(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	// rate_limit stays at its default (10/s, burst 20): six lines are
	// within it. 40 members: a line costs 39.
	startIMCD(t, f, procOpts{extra: []string{"fanout_limit = 1", "fanout_burst = 100"}})
	r := room1
	step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	const members = 40
	f.Reset() // the reply to #create is not one of the joins'
	total := 0
	for i := 1; i < members; i++ {
		if _, err := f.Raise(opensipstest.NewEvent(fmt.Sprintf("sip:m%d@127.0.0.1", i), r, "#join")); err != nil {
			t.Fatal(err)
		}
		total += i + 1 // everyone in the room, the joiner included
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, total); err != nil {
		t.Fatalf("joins: %v", err)
	}
	// line raises alice's line i, waits for want deliveries, and returns
	// what was delivered once nothing more shows up.
	line := func(i, want int) []opensipstest.Delivery {
		t.Helper()
		f.Reset()
		if _, err := f.Raise(opensipstest.NewEvent(alice, r, "flood "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WaitDeliveries(ctx, want); err != nil {
			t.Fatalf("line %d: %v (got %v)", i, err, summarize(f.Deliveries()))
		}
		time.Sleep(100 * time.Millisecond) // anything more would show up now
		return f.Deliveries()
	}
	// 100 - 39 - 39 = 22 left: the third line goes, into debt.
	for i := 1; i <= 3; i++ {
		if ds := line(i, members-1); len(ds) != members-1 {
			t.Fatalf("line %d reached %d members, want %d: %v", i, len(ds), members-1, summarize(ds))
		}
	}
	if ds := line(4, 1); len(ds) != 1 || ds[0].To != alice || ds[0].Body != imc.TxtRateLimited {
		t.Fatalf("line 4: %v, want alice told once", summarize(ds))
	}
	for i := 5; i <= 6; i++ {
		if ds := line(i, 0); len(ds) != 0 {
			t.Fatalf("line %d: %v, want nothing", i, summarize(ds))
		}
	}
	// Another member is not concerned.
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent("sip:m1@127.0.0.1", r, "not me")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitDeliveries(ctx, members-1); err != nil {
		t.Fatalf("m1's line: %v (got %d)", err, len(f.Deliveries()))
	}
}
