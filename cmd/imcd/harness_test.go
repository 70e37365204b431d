package main

// End-to-end tests: the real imcd binary, built once, against the fake
// OpenSIPS of pkg/opensipstest over real loopback sockets.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

var imcdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imcd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imcdBin = filepath.Join(dir, "imcd")
	var flags []string
	if os.Getenv("IMCD_E2E_RACE") != "" {
		flags = append(flags, "-race")
	}
	if err := imcdproc.Build(imcdBin, ".", flags...); err != nil {
		fmt.Fprintln(os.Stderr, "building imcd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running imcd.
type proc struct {
	*imcdproc.Proc
	t       *testing.T
	dir     string
	events  string // the bound event socket, "tcp:127.0.0.1:port"
	miUDP   string // host:port of imcd's mi_datagram
	miHTTP  string
	fifo    string
	metrics string
	log     *imcdproc.LogBuffer
}

type procOpts struct {
	transport string // "stream" (default) or "datagram"
	dir       string // data dir to reuse (restart tests); "" = a new one
	extra     []string
}

// startIMCD starts imcd against the fake OpenSIPS f, every socket on a port
// the kernel picks, and waits until /readyz says ready (database up,
// subscribed).
func startIMCD(t *testing.T, f *opensipstest.Server, o procOpts) *proc {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	lines := []string{
		// Each test turns on the history if it is what it tests: without
		// it the conversations are the native module's.
		"history = off",
		"opensips_mi = " + f.MISocket(),
		"event_renew = 300ms",
		"event_expire = 10s",
		"delivery_timeout = 3s",
		"shutdown_grace = 5s",
	}
	if o.transport == "datagram" {
		lines = append(lines, "event_listen = udp:127.0.0.1:0")
	}
	ip, err := imcdproc.Start(imcdproc.Options{Bin: imcdBin, Dir: dir, Lines: append(lines, o.extra...), ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Proc: ip, t: t, dir: dir, events: ip.Addrs.Events, miUDP: imcdproc.HostPort(ip.Addrs.MIDatagram),
		miHTTP: ip.Addrs.MIHTTP, fifo: ip.Addrs.MIFIFO, metrics: ip.Addrs.Metrics, log: ip.Log}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("imcd log:\n%s", p.log.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit; it returns the exit code.
func (p *proc) stop() int {
	code, err := p.Stop(15 * time.Second)
	if err != nil {
		p.t.Errorf("imcd did not stop within 15s of SIGTERM")
	}
	return code
}

func (p *proc) get(path string) (int, string) { return p.Get(path) }

// metric returns the value of one sample line of /metrics ("name{labels}"),
// or 0 when absent.
func (p *proc) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body := p.get("/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			var v float64
			fmt.Sscanf(line[len(series)+1:], "%g", &v)
			return v
		}
	}
	return 0
}

// mi sends one MI request to imcd's datagram MI and returns the reply.
func (p *proc) mi(t *testing.T, req string) string {
	t.Helper()
	c, err := net.Dial("udp", p.miUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("MI %s: %v", req, err)
	}
	return string(buf[:n])
}

// want is one MESSAGE imcd should make OpenSIPS send.
type want struct {
	to    string // member URI, also the R-URI
	body  string
	reply bool   // a direct reply: carries In-Reply-To with the command's Call-ID
	ctype string // "" = text/plain
}

const room1 = "sip:chat-1@127.0.0.1"

// step raises one event from "from" to ruri and checks that exactly the
// wanted MESSAGEs leave, From the room URI from, each with a well-formed
// headers param.
func step(t *testing.T, f *opensipstest.Server, from, ruri, roomFrom, body string, wants ...want) opensipstest.Event {
	t.Helper()
	ev := opensipstest.NewEvent(from, ruri, body)
	ev.CType = "text/plain;charset=UTF-8"
	return stepEvent(t, f, ev, roomFrom, wants...)
}

func stepEvent(t *testing.T, f *opensipstest.Server, ev opensipstest.Event, roomFrom string, wants ...want) opensipstest.Event {
	t.Helper()
	f.Reset()
	if _, err := f.Raise(ev); err != nil {
		t.Fatalf("raise %q: %v", ev.Body, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, len(wants)); err != nil {
		t.Fatalf("%q: waiting for %d deliveries: %v (got %d: %v)", ev.Body, len(wants), err, len(f.Deliveries()), summarize(f.Deliveries()))
	}
	time.Sleep(50 * time.Millisecond) // anything extra would show up now
	got := f.Deliveries()
	var gs, ws []string
	for _, d := range got {
		if d.Method != "MESSAGE" || d.RURI != d.To || d.From != roomFrom || d.FromTag == "" {
			t.Errorf("%q: bad t_uac_dlg: method %q ruri %q to %q from %q tag %q", ev.Body, d.Method, d.RURI, d.To, d.From, d.FromTag)
		}
		if strings.Contains(d.Headers, "Content-Length") || strings.Count(d.Headers, "\r\n") != len(d.Fields) {
			t.Errorf("%q: bad headers %q", ev.Body, d.Headers)
		}
		reply := d.InReplyTo != ""
		if reply && d.InReplyTo != ev.CallID {
			t.Errorf("%q: In-Reply-To %q, want %q", ev.Body, d.InReplyTo, ev.CallID)
		}
		gs = append(gs, fmt.Sprintf("to=%s reply=%v ctype=%s body=%q", d.To, reply, d.ContentType, d.Body))
	}
	for _, w := range wants {
		ct := w.ctype
		if ct == "" {
			ct = "text/plain"
		}
		ws = append(ws, fmt.Sprintf("to=%s reply=%v ctype=%s body=%q", w.to, w.reply, ct, w.body))
	}
	sort.Strings(gs)
	sort.Strings(ws)
	if strings.Join(gs, "\n") != strings.Join(ws, "\n") {
		t.Errorf("%s sends %q to %s:\n got:\n  %s\nwant:\n  %s", ev.From, ev.Body, ev.RURI, strings.Join(gs, "\n  "), strings.Join(ws, "\n  "))
	}
	return ev
}

func summarize(ds []opensipstest.Delivery) []string {
	var s []string
	for _, d := range ds {
		s = append(s, d.To+": "+d.Body)
	}
	return s
}
