package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/daemon"
)

// BenchmarkFanoutInProcess runs the fan-out scenario with imcd's daemon in
// this process instead of a child, so that go test -cpuprofile/-memprofile
// can profile it:
//
//	go test -run '^$' -bench FanoutInProcess -benchtime 3s \
//	    -cpuprofile var/bench/cpu.pprof -memprofile var/bench/mem.pprof ./cmd/imcbench
//	go tool pprof -top -focus 'imcd-sip/imcd/pkg' cmd/imcbench/... var/bench/cpu.pprof
//
// b.N counts deliveries (t_uac_dlg requests answered by the sink); the
// profile also holds the generator and the sink (package main), which
// -focus or -ignore 'main\.' separates.
func BenchmarkFanoutInProcess(b *testing.B) {
	for _, size := range []int{10, 100} {
		for _, tr := range []string{"stream", "datagram"} {
			b.Run("members="+strconv.Itoa(size)+"/"+tr, func(b *testing.B) { benchInProcess(b, size, tr) })
		}
	}
}

func benchInProcess(b *testing.B, size int, transport string) {
	ctx := context.Background()
	clk := clock{base: time.Now()}
	s, err := startSink(0, false, clk)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	dir := b.TempDir()
	db, err := openBenchDB(ctx, "sqlite", dir, "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.drop(ctx)
	set := fanoutSet(size)
	if err := db.fill(ctx, set); err != nil {
		b.Fatal(err)
	}
	d, events, metrics := openDaemon(b, imcdOptions{dir: dir, transport: transport, dbURL: db.url, sink: s, rateMax: 100000, hashSize: 4})
	defer d.Close()
	waitReady(b, metrics)

	snd, err := dialSender(transport, events)
	if err != nil {
		b.Fatal(err)
	}
	defer snd.close()
	p := newPump(snd, s, set, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := p.send(ctx, func() bool { return int64(snd.sent)*p.fan >= int64(b.N) }); err != nil {
		b.Fatal(err)
	}
	if lost := p.drain(ctx, 30*time.Second); lost > 0 {
		b.Fatalf("%d deliveries lost", lost)
	}
	b.StopTimer()
	b.ReportMetric(float64(p.delivered())/time.Since(start).Seconds(), "deliveries/s")
}

// openDaemon starts imcd's daemon in this process from the same
// configuration the child process gets, on ports the kernel picks.
func openDaemon(b *testing.B, o imcdOptions) (d *daemon.Daemon, events, metrics string) {
	b.Helper()
	listen := "tcp:127.0.0.1:0"
	if o.transport == "datagram" {
		listen = "udp:127.0.0.1:0"
	}
	lines := append([]string{"data_dir = " + o.dir, "event_listen = " + listen, "mi_http = 127.0.0.1:0",
		"metrics_listen = 127.0.0.1:0"}, configLines(o)...)
	conf := filepath.Join(o.dir, "imcd.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, _, err := config.Load([]string{"-config", conf}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	d = daemon.New(cfg, slog.New(slog.DiscardHandler))
	if err := d.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	a := d.Addrs()
	return d, imcdproc.HostPort(a.Events), a.Metrics
}

func waitReady(b *testing.B, metrics string) {
	b.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get("http://" + metrics + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	b.Fatal("daemon not ready after 20 s")
}
