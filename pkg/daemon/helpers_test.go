package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// The daemon's own tests run it in this process, on a temporary SQLite
// file, against the fake OpenSIPS over loopback sockets on ports the kernel
// picks.

const (
	alice   = "sip:alice@example.com"
	bob     = "sip:bob@example.com"
	carol   = "sip:carol@example.com"
	manager = "sip:chat-manager@example.com"
	room1   = "sip:chat-1@example.com"
)

// testConfig is imcd's default configuration with every socket on loopback
// port 0, the database in dir and OpenSIPS's MI at f.
func testConfig(t testing.TB, f *opensipstest.Server, dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.OpenSIPSMI = f.MISocket()
	cfg.EventListen = "tcp:127.0.0.1:0"
	cfg.MIDatagram = "udp:127.0.0.1:0"
	cfg.MIHTTP = "127.0.0.1:0"
	cfg.MIFIFO = filepath.Join(dir, "imcd_fifo")
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.SubscribeRenew = 300 * time.Millisecond
	cfg.SubscribeExpire = 10 * time.Second
	cfg.DeliveryTimeout = 3 * time.Second
	cfg.ShutdownGrace = 5 * time.Second
	// The canary's probes would be events and t_uac_dlg requests that the
	// tests do not count on: those of the canary turn it on.
	cfg.Canary.Interval = 0
	return cfg
}

// testLogger writes the daemon's log to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openDaemon opens a daemon with cfg and waits until OpenSIPS (the fake)
// has its subscription; Close runs at the end of the test.
func openDaemon(t *testing.T, f *opensipstest.Server, cfg config.Config) *Daemon {
	t.Helper()
	return openWith(t, f, cfg, testLogger(t))
}

// openWith is openDaemon logging to logger.
func openWith(t *testing.T, f *opensipstest.Server, cfg config.Config, logger *slog.Logger) *Daemon {
	t.Helper()
	d := New(cfg, logger)
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if cfg.Subscribe {
		if err := f.WaitSubscribed(ctxTimeout(t, 5*time.Second), cfg.EventName, d.Addrs().Events); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.MetricsListen != "" {
		waitReady(t, d)
	}
	return d
}

// waitReady waits until /readyz answers 200: OpenSIPS has the subscription
// before imcd has read its answer.
func waitReady(t *testing.T, d *Daemon) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for code, body := get(t, d, "/readyz"); code != 200; code, body = get(t, d, "/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %d %s", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// send raises one MESSAGE from "from" to ruri and waits for n deliveries;
// it returns them as "to: body" lines, sorted.
func send(t *testing.T, f *opensipstest.Server, from, ruri, body string, n int) []string {
	t.Helper()
	return sendEvent(t, f, opensipstest.NewEvent(from, ruri, body), n)
}

func sendEvent(t *testing.T, f *opensipstest.Server, ev opensipstest.Event, n int) []string {
	t.Helper()
	f.Reset()
	if _, err := f.Raise(ev); err != nil {
		t.Fatalf("raise %q: %v", ev.Body, err)
	}
	ds, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), n)
	if err != nil {
		t.Fatalf("%q: waiting for %d deliveries: %v (got %v)", ev.Body, n, err, lines(f.Deliveries()))
	}
	return lines(ds)
}

// aliceAndBob makes room1 with alice as its owner and bob a member, and
// forgets the deliveries that took.
func aliceAndBob(t *testing.T, f *opensipstest.Server) {
	t.Helper()
	send(t, f, alice, manager, "#create chat-1", 1)
	send(t, f, bob, room1, "#join", 2)
	f.Reset()
}

// raiseLines raises n chat lines "line 0" … from "from" into room1 without
// waiting for their deliveries.
func raiseLines(t *testing.T, f *opensipstest.Server, from string, n int) {
	t.Helper()
	for i := range n {
		if _, err := f.Raise(opensipstest.NewEvent(from, room1, "line "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

func lines(ds []opensipstest.Delivery) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.To+": "+d.Body)
	}
	slices.Sort(out)
	return out
}

// same fails unless got and want hold the same lines (want is sorted here).
func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// quiet fails if anything more is delivered within a short while: the
// daemon must not send what the test did not expect.
func quiet(t *testing.T, f *opensipstest.Server, after int) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if ds := f.Deliveries(); len(ds) > after {
		t.Fatalf("unexpected deliveries: %v", lines(ds[after:]))
	}
}

// miCall sends one request to the daemon's datagram MI and returns the
// reply.
func miCall(t *testing.T, d *Daemon, req string) string {
	t.Helper()
	return datagramCall(t, strings.TrimPrefix(d.Addrs().MIDatagram, "udp:"), req)
}

// datagramCall sends one MI request to the datagram socket at addr
// (host:port) and returns the reply.
func datagramCall(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("MI %s: %v", req, err)
	}
	return string(buf[:n])
}

// get fetches a path of the daemon's metrics server.
func get(t *testing.T, d *Daemon, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.Addrs().Metrics + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of one sample of /metrics, 0 when absent.
func metric(t *testing.T, d *Daemon, series string) float64 {
	t.Helper()
	_, body := get(t, d, "/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return 0
}

// readCounter reads one labelled counter from reg, 0 when absent.
func readCounter(reg *prometheus.Registry, name, label, value string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
