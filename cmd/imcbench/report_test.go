package main

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(1001-i)) // reversed: quantiles sorts
	}
	p50, p99, p999, pmax := quantiles(ds)
	if p50 != 500 || p99 != 990 || p999 != 999 || pmax != 1000 {
		t.Errorf("p50 %d p99 %d p99.9 %d max %d", p50, p99, p999, pmax)
	}
	if p := percentile([]time.Duration{7}, 0.999); p != 7 {
		t.Errorf("one sample: %d", p)
	}
	if a, b, c, d := quantiles(nil); a+b+c+d != 0 {
		t.Error("empty")
	}
}

func TestFormat(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(num(0), "0")
	f(num(999), "999")
	f(num(1000), "1,000")
	f(num(1234567.6), "1,234,568")
	f(ms(0), "0")
	f(ms(345*time.Microsecond), "0.345")
	f(ms(12345*time.Microsecond), "12.35")
	f(ms(1234*time.Millisecond), "1234")
}

func TestTableMarkdown(t *testing.T) {
	tb := &table{title: "T", columns: []string{"a", "b"}}
	tb.add("x|y", "1")
	tb.note("n %d", 1)
	var sb strings.Builder
	tb.writeMarkdown(&sb)
	want := "\n### T\n\n| a | b |\n|---|--:|\n| x\\|y | 1 |\n\n- n 1\n"
	if sb.String() != want {
		t.Errorf("got %q", sb.String())
	}
	sb.Reset()
	tb.writeText(&sb)
	if !strings.Contains(sb.String(), "x|y  1") {
		t.Errorf("text: %q", sb.String())
	}
}

func TestParseProc(t *testing.T) {
	stat := "4242 (im cd) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	if d, err := parseStatCPU([]byte(stat)); err != nil || d != 3250*time.Millisecond {
		t.Errorf("stat: %v %v", d, err)
	}
	if _, err := parseStatCPU([]byte("1 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
	status := "Name:\timcd\nVmPeak:\t  200 kB\nVmHWM:\t   1536 kB\nVmRSS:\t 1024 kB\n"
	if v, err := parseStatusKB([]byte(status), "VmHWM"); err != nil || v != 1536*1024 {
		t.Errorf("VmHWM %d %v", v, err)
	}
	if _, err := parseStatusKB([]byte(status), "VmSwap"); err == nil {
		t.Error("missing field found")
	}
	if h, ok := parseHostCPU("cpu  100 5 50 1000 7 1 2 40 0 0\ncpu0 1 2 3\n"); !ok ||
		h.busy != 1980*time.Millisecond || h.steal != 400*time.Millisecond {
		t.Errorf("host %+v %v", h, ok)
	}
}

func TestMetricSum(t *testing.T) {
	text := `# HELP opensips_imc_events_total x
opensips_imc_events_total{result="busy",transport="stream"} 3
opensips_imc_events_total{result="ok",transport="stream"} 100
opensips_imc_events_total{result="busy",transport="datagram"} 2
opensips_imc_events_total_other 9
opensips_imc_db_latency_seconds_sum{op="apply"} 0.5
opensips_imc_db_latency_seconds_count{op="apply"} 250
`
	if v := metricSum(text, metricEvents, `result="busy"`); v != 5 {
		t.Errorf("busy %v", v)
	}
	if v := metricSum(text, metricEvents); v != 105 {
		t.Errorf("all %v", v)
	}
	if v := metricSum(text, metricDBLatency+"_count", `op="apply"`); v != 250 {
		t.Errorf("count %v", v)
	}
}

func TestLoadTook(t *testing.T) {
	log := `{"time":"2026-01-01T00:00:00Z","level":"NOTICE","msg":"using database","db_url":"sqlite:///x"}
{"time":"2026-01-01T00:00:01Z","level":"NOTICE","msg":"rooms loaded","rooms":100000,"took":1234000000}
`
	if d := loadTook(log); d != 1234*time.Millisecond {
		t.Errorf("took %v", d)
	}
	if d := loadTook("nothing"); d != 0 {
		t.Errorf("took %v", d)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-sizes", "2,1_000", "-set", "hash_size=6"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != time.Second || len(o.sizes) != 2 || o.sizes[1] != 1000 || o.scaleRooms[0] != 10000 || o.extra[0] != "hash_size = 6" {
		t.Errorf("%+v", o)
	}
	for _, bad := range [][]string{{"-sizes", "1"}, {"-scenarios", "x"}, {"-transports", "sctp"}, {"-cmd-db", "oracle"}, {"extra"}} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
