package main

// End-to-end tests: the real imcd binary, built once, against the fake
// OpenSIPS of pkg/opensipstest over real loopback sockets.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
	goBin, err := exec.LookPath("go")
	if err != nil {
		// scripts/test.sh puts its Go on PATH; this is for a bare `go test`
		// from a toolchain that is not (the test binary was built by it).
		//lint:ignore SA1019 no other way to find the toolchain that built us
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", imcdBin}
	if os.Getenv("IMCD_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	build := exec.Command(goBin, append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building imcd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is one running imcd.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	conf     string
	dir      string
	events   string // event_listen
	miUDP    string // host:port of imcd's mi_datagram
	miHTTP   string
	fifo     string
	metrics  string
	log      *syncBuffer
	exited   chan struct{}
	exitCode int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type procOpts struct {
	transport string // "stream" (default) or "datagram"
	dir       string // data dir to reuse (restart tests); "" = a new one
	extra     []string
}

// startIMCD writes a config file for the fake OpenSIPS f and starts imcd
// with it, waiting until /readyz says ready (database up, subscribed).
func startIMCD(t *testing.T, f *opensipstest.Server, o procOpts) *proc {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	p := &proc{t: t, dir: dir, log: &syncBuffer{}, exited: make(chan struct{})}
	if o.transport == "datagram" {
		p.events = fmt.Sprintf("udp:127.0.0.1:%d", freePort(t, "udp"))
	} else {
		p.events = fmt.Sprintf("tcp:127.0.0.1:%d", freePort(t, "tcp"))
	}
	p.miUDP = fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	p.miHTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	p.metrics = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	p.fifo = filepath.Join(dir, "imcd_fifo")
	lines := []string{
		"data_dir = " + dir,
		"opensips_mi = " + f.MISocket(),
		"event_listen = " + p.events,
		"event_renew = 300ms",
		"event_expire = 10s",
		"mi_datagram = udp:" + p.miUDP,
		"mi_http = " + p.miHTTP,
		"mi_fifo = " + p.fifo,
		"metrics_listen = " + p.metrics,
		"delivery_timeout = 3s",
		"log_level = info",
		"shutdown_grace = 5s",
	}
	lines = append(lines, o.extra...)
	p.conf = filepath.Join(dir, "imcd.conf")
	if err := os.WriteFile(p.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(imcdBin, "-config", p.conf)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("imcd log:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, body := p.get("/readyz"); code == 200 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("imcd not ready after 20s: %d %s\nlog:\n%s", code, body, p.log.String())
		}
		select {
		case <-p.exited:
			t.Fatalf("imcd exited with %d before it was ready\nlog:\n%s", p.exitCode, p.log.String())
		case <-time.After(2 * time.Millisecond): // fast, so that an early "ready" is caught
		}
	}
	return p
}

// stop sends SIGTERM and waits for the exit; it returns the exit code.
func (p *proc) stop() int {
	select {
	case <-p.exited:
		return p.exitCode
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("imcd did not stop within 15s of SIGTERM")
	}
	return p.exitCode
}

func (p *proc) get(path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.metrics + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

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

func startFake(t *testing.T, o opensipstest.Options) *opensipstest.Server {
	t.Helper()
	f, err := opensipstest.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
