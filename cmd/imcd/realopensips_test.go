package main

// End-to-end tests through a real OpenSIPS: the binary of
// IMCD_TEST_OPENSIPS with the project's own script fragment, real SIP
// users (internal/sipua) registered with it, and the real imcd binary.
// What the fake OpenSIPS cannot show is shown here: that the fragment
// loads and raises the event, that event_stream and event_datagram carry
// it, and that t_uac_dlg's MESSAGEs reach registered users through the
// proxy.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/internal/opensipsproc"
	"github.com/imcd-sip/imcd/internal/sipua"
)

// realLab is one real OpenSIPS, a SIP agent playing the users, and imcd.
type realLab struct {
	t    *testing.T
	o    labOpts
	os   *opensipsproc.Proc
	ua   *sipua.Agent
	imcd *imcdproc.Proc
}

// labOpts shape a realLab.
type labOpts struct {
	transport string   // "stream" (event_stream, the default) or "datagram"
	users     []string // registered at start
	imcd      []string // more imcd configuration lines
	workers   int      // OpenSIPS UDP workers (4 when 0)
	// fragment is the project's script fragment under scripts/opensips
	// (imcd.cfg when ""); params override its modparams
	// (opensipsproc.Options.Params).
	fragment string
	params   map[string]string
	// answer is the agent's Answer (200 to everything when nil).
	answer func(user string) int
	// later: imcd is not started with the lab; the test starts it
	// (startIMCD), as often as it likes.
	later bool
	// ordered: imcd's MESSAGEs go through a socket of OpenSIPS of their
	// own with one worker (outbound_proxy there, proxy_in_order).
	ordered bool
}

// startLab starts OpenSIPS with scripts/opensips/imcd.cfg (or
// labOpts.fragment), registers the users, and starts imcd against it
// (unless labOpts.later); it skips the test when no OpenSIPS
// binary is given.
func startLab(t *testing.T, o labOpts) *realLab {
	t.Helper()
	bin := os.Getenv(opensipsproc.EnvBinary)
	if bin == "" {
		t.Skip("no real OpenSIPS: set " + opensipsproc.EnvBinary + " to …/sbin/opensips of an unpacked build (scripts/test.sh does when it finds one)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fragment := o.fragment
	if fragment == "" {
		fragment = "imcd.cfg"
	}
	osp, err := opensipsproc.Start(ctx, opensipsproc.Options{Bin: bin, Dir: t.TempDir(),
		Fragment: "../../scripts/opensips/" + fragment, Params: o.params, UDPWorkers: o.workers, LoopWorkers: loopWorkers(o)})
	if err != nil {
		t.Fatal(err)
	}
	l := &realLab{t: t, o: o, os: osp, ua: &sipua.Agent{Record: true, Answer: o.answer}}
	t.Cleanup(func() {
		if err := osp.Stop(10 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("OpenSIPS log:\n%s", osp.Log())
		}
	})
	if err := l.ua.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.ua.Close() })
	for _, u := range o.users {
		if err := l.ua.Register(ctx, osp.SIP, u, "127.0.0.1", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if !o.later {
		l.imcd = l.startIMCD(t.TempDir())
	}
	return l
}

// loopWorkers is the workers of the socket labOpts.ordered goes through.
func loopWorkers(o labOpts) int {
	if o.ordered {
		return 1
	}
	return 0
}

// startIMCD starts imcd against the lab's OpenSIPS with the lab's
// configuration (labOpts.imcd, then more), data in dir; it is stopped
// when the test ends, its log shown if the test failed.
func (l *realLab) startIMCD(dir string, more ...string) *imcdproc.Proc {
	l.t.Helper()
	lines := []string{
		"history = off",
		"opensips_mi = " + l.os.MI,
		// Members are sip:user@127.0.0.1, port 5060 by default: this
		// OpenSIPS listens elsewhere.
		"outbound_proxy = sip:" + l.os.SIP.String(),
		"event_renew = 300ms",
		"event_expire = 10s",
		"shutdown_grace = 5s",
	}
	if l.o.transport == "datagram" {
		lines = append(lines, "event_listen = udp:127.0.0.1:0")
	}
	if l.o.ordered {
		lines = append(lines, "outbound_proxy = sip:"+l.os.Loop.String(), "proxy_in_order = yes")
	}
	lines = append(append(lines, l.o.imcd...), more...)
	p, err := imcdproc.Start(imcdproc.Options{Bin: imcdBin, Dir: dir, Lines: lines, ReadyTimeout: 30 * time.Second})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if _, err := p.Stop(15 * time.Second); err != nil {
			l.t.Error(err)
		}
		if l.t.Failed() {
			l.t.Logf("imcd log:\n%s", p.Log.String())
		}
	})
	return p
}

// send sends one MESSAGE from user to uri (sip:chat-1@127.0.0.1) through
// OpenSIPS and checks that it was accepted (202).
func (l *realLab) send(from, uri, body string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := l.ua.Do(ctx, l.os.SIP, &sipua.Request{RURI: uri, From: "sip:" + from + "@127.0.0.1", Body: body})
	if err != nil {
		l.t.Fatal(err)
	}
	if code != 202 {
		l.t.Fatalf("MESSAGE %q from %s to %s: %d, want 202 from the fragment", body, from, uri, code)
	}
}

// expect waits until user has received a MESSAGE from room containing
// text after their first skip messages, and returns its index.
func (l *realLab) expect(user, room, text string, skip int) int {
	l.t.Helper()
	var idx int
	ok := waitFor(20*time.Second, func() bool {
		ms := l.ua.MessagesTo(user)
		for i := skip; i < len(ms); i++ {
			if strings.Contains(ms[i].Body, text) && strings.Contains(ms[i].From, "sip:"+room+"@127.0.0.1") {
				idx = i
				return true
			}
		}
		return false
	})
	if !ok {
		l.t.Fatalf("%s never got %q from %s; got %s", user, text, room, bodies(l.ua.MessagesTo(user)))
	}
	return idx
}

func bodies(ms []sipua.Received) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n  from %s: %q", m.From, m.Body)
	}
	return b.String()
}

// TestRealOpenSIPSConversation plays a short conversation through the real
// OpenSIPS on both event transports: commands and chat go in as SIP
// MESSAGEs, the fragment raises them to imcd, and imcd's answers reach
// the registered users through t_uac_dlg and the proxy.
func TestRealOpenSIPSConversation(t *testing.T) {
	for _, c := range []struct{ name, transport, path string }{
		{"stream", "stream", "proxy"}, {"datagram", "datagram", "proxy"}, {"stream-contact", "stream", "contact"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := startLab(t, labOpts{transport: c.transport, users: []string{"alice", "bob", "carol"},
				imcd: []string{"delivery_path = " + c.path}})
			l.send("alice", "sip:chat-1@127.0.0.1", "#create chat-1")
			l.expect("alice", "chat-1", "room was created", 0)
			l.send("bob", "sip:chat-manager@127.0.0.1", "#join chat-1")
			l.expect("alice", "chat-1", "<sip:bob@127.0.0.1> has joined", 0)
			l.expect("bob", "chat-1", "<sip:bob@127.0.0.1> has joined", 0)
			l.send("alice", "sip:chat-1@127.0.0.1", "hello bob, through a real OpenSIPS")
			i := l.expect("bob", "chat-1", "alice@127.0.0.1>: hello bob, through a real OpenSIPS", 0)
			// The proxy path loops through OpenSIPS's script (two Vias);
			// the contact path goes straight to bob's contact, which imcd
			// looked up when it first sent to him (one).
			if hops, want := l.ua.MessagesTo("bob")[i].Hops, map[string]int{"proxy": 2, "contact": 1}[c.path]; hops != want {
				t.Errorf("delivery_path %s: the line reached bob with %d Vias, want %d", c.path, hops, want)
			}
			// A non-member is told, and nothing reaches the room.
			l.send("carol", "sip:chat-1@127.0.0.1", "let me in")
			l.expect("carol", "chat-1", "not a member", 0)
			l.send("bob", "sip:chat-1@127.0.0.1", "#list")
			l.expect("bob", "chat-1", "*sip:alice@127.0.0.1", 0)
			l.send("bob", "sip:chat-1@127.0.0.1", "#exit")
			l.expect("alice", "chat-1", "bob", 2)
			for _, m := range l.ua.MessagesTo("alice") {
				if strings.Contains(m.Body, "let me in") {
					t.Errorf("a non-member's line reached the room: %q", m.Body)
				}
			}
			// imcd reads the real OpenSIPS's shared memory (-m 256) and
			// caps its transactions by it.
			if !waitFor(10*time.Second, func() bool {
				return metricSum(l.imcd.Metrics(), "opensips_imc_opensips_shm_total_bytes") == 256<<20
			}) {
				t.Errorf("imcd never read OpenSIPS's 256 MB of shared memory:\n%s", l.imcd.Metrics())
			}
			if limit := metricSum(l.imcd.Metrics(), "opensips_imc_delivery_transactions_limit"); limit < 1000 {
				t.Errorf("transactions capped at %g with 256 MB of shared memory nearly all free", limit)
			}
		})
	}
}
