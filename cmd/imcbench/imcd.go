package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
)

// clockTicks is sysconf(_SC_CLK_TCK), the unit of utime and stime in
// /proc/PID/stat; 100 on every Linux architecture Go supports.
const clockTicks = 100

// imcdOptions describe one imcd child process.
type imcdOptions struct {
	bin       string
	dir       string // data_dir and config file
	transport string // "stream" or "datagram"
	dbURL     string
	rooms     string // rooms_table
	members   string // members_table
	sink      *sink
	rateMax   int      // delivery_rate_max; imcd's default when <= 0
	hashSize  int      // hash_size
	extra     []string // more "key = value" lines, after imcbench's own
	env       []string // more environment variables
	verbose   bool     // copy imcd's log to stderr
}

// imcd is one running imcd child, started by the shared process harness.
type imcd struct {
	*imcdproc.Proc
	events    string // host:port of the bound event socket
	transport string
	miHTTP    string
	started   time.Time
}

// configLines returns imcd's configuration for o; the harness adds the
// sockets (loopback, port 0). Flood control stays on (its cost is part of
// every figure) with limits no benchmark sender reaches: a few hundred users
// send all the load. The queues keep their defaults (shard_queue 4096,
// delivery_queue 65536): the generators keep far less outstanding, and a
// larger shard_queue would preallocate hundreds of MB of channel buffer that
// would skew RSS and GC.
func configLines(o imcdOptions) []string {
	lines := []string{
		"db_url = " + o.dbURL,
		"create_tables = yes",
		"opensips_mi = " + o.sink.addr(),
		"event_subscribe = yes",
		`mi_datagram = ""`,
		`mi_fifo = ""`,
		"hash_size = " + strconv.Itoa(o.hashSize),
		"log_level = notice",
		"shutdown_grace = 5s",
		"rate_limit = 1000000",
		"rate_burst = 1048576",
		"fanout_limit = 0",
		// The scenarios measure the room service itself; "history" turns
		// the history on to measure what it costs.
		"history = off",
		// The lean sink plays no script: the canary's probes would be
		// deliveries, and never come back.
		"canary_interval = 0",
		// The sink has no shared memory to read (get_statistics): the
		// cap stays delivery_outstanding's.
		"delivery_shm_share = 0",
	}
	if o.rateMax > 0 {
		// The lean sink is not an OpenSIPS: it answers at once and keeps
		// no transaction afterwards, so imcd's pacing ceiling and its
		// count of transactions on wait (opensips_wt_timer) would measure
		// an OpenSIPS that is not there, not imcd's cost.
		lines = append(lines, "delivery_rate_max = "+strconv.Itoa(o.rateMax), "opensips_wt_timer = 0")
	}

	if o.transport == "datagram" {
		lines = append(lines, "event_listen = udp:127.0.0.1:0")
	}
	if o.rooms != "" {
		lines = append(lines, "rooms_table = "+o.rooms, "members_table = "+o.members)
	}
	return append(lines, o.extra...)
}

// startIMCD starts imcd and returns once it is ready and the sink has seen
// it subscribe the event socket it bound.
func startIMCD(o imcdOptions) (*imcd, error) {
	started := time.Now()
	var logCopy io.Writer
	if o.verbose {
		logCopy = os.Stderr
	}
	ip, err := imcdproc.Start(imcdproc.Options{Bin: o.bin, Dir: o.dir, Lines: configLines(o), Env: o.env,
		Log: logCopy, ReadyTimeout: 60 * time.Second, LogLimit: 64 << 10})
	if err != nil {
		return nil, err
	}
	p := &imcd{Proc: ip, events: imcdproc.HostPort(ip.Addrs.Events), transport: o.transport, miHTTP: ip.Addrs.MIHTTP,
		started: started}
	deadline := time.Now().Add(10 * time.Second)
	for o.sink.subscribedSocket() != ip.Addrs.Events {
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the sink never saw imcd subscribe %s\n%s", ip.Addrs.Events, p.Log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p, nil
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 20 s).
func (p *imcd) stop() error {
	if _, err := p.Stop(20 * time.Second); err != nil {
		return errors.New("imcd did not stop within 20 s of SIGTERM")
	}
	return nil
}

// cpuTime returns the user+system CPU time of pid so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat
// line. The command name (field 2) may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("/proc stat: bad utime/stime")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// memKB returns a "kB" field of /proc/PID/status (VmHWM, VmRSS), in bytes.
func memKB(pid int, field string) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, field)
}

func parseStatusKB(b []byte, field string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc status: no %s", field)
}

func (p *imcd) pid() int { return p.Pid() }

// ctxSwitches returns the voluntary and involuntary context switches of
// every thread of pid so far (/proc/PID/task/*/status); threads that have
// exited are not counted.
func ctxSwitches(pid int) uint64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n uint64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if err != nil {
			continue
		}
		for _, f := range []string{"voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"} {
			if v, err := parseStatusCount(b, f); err == nil {
				n += v
			}
		}
	}
	return n
}

// parseStatusCount reads a plain number field of /proc/PID/status.
func parseStatusCount(b []byte, field string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc status: no %s", field)
}

func (p *imcd) cpu() time.Duration {
	d, _ := cpuTime(p.pid())
	return d
}

// metricsText returns imcd's /metrics.
func (p *imcd) metricsText() string { return p.Metrics() }

// metricSum adds the samples of metric name (Prometheus text format) whose
// labels include every "k=\"v\"" in with.
func metricSum(text, name string, with ...string) float64 {
	var sum float64
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || len(rest) == 0 || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels := ""
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels, rest = rest[1:end], rest[end+1:]
		}
		match := true
		for _, w := range with {
			if !containsLabel(labels, w) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// metricDelta is how much metric name (its samples with every label of
// with) grew from the /metrics text m0 to m1.
func metricDelta(m0, m1, name string, with ...string) float64 {
	return metricSum(m1, name, with...) - metricSum(m0, name, with...)
}

func containsLabel(labels, want string) bool {
	for l := range strings.SplitSeq(labels, ",") {
		if l == want {
			return true
		}
	}
	return false
}

// imcd's metric names (pkg/metrics, namespace opensips_imc).
const (
	metricEvents    = "opensips_imc_events_total"
	metricCommands  = "opensips_imc_commands_total"
	metricDBLatency = "opensips_imc_db_latency_seconds"
	metricResults   = "opensips_imc_delivery_results_total"
	metricShed      = "opensips_imc_delivery_shed_total"
)

// refusals counts what imcd refused or could not send: events refused busy,
// notices shed (the room was busy) and MESSAGEs lost or never sent.
func refusals(text string) float64 {
	return metricSum(text, metricEvents, `result="busy"`) +
		metricSum(text, metricShed) +
		metricSum(text, metricResults, `kind="lost"`) +
		metricSum(text, metricResults, `kind="failed"`)
}

// mi calls one MI command over imcd's mi_http and returns the reply body
// and how long the whole request took.
func (p *imcd) mi(method string) ([]byte, time.Duration, error) {
	c := http.Client{Timeout: 30 * time.Second}
	body := `{"jsonrpc":"2.0","method":"` + method + `","id":1}`
	start := time.Now()
	resp, err := c.Post("http://"+p.miHTTP+"/mi", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("MI %s: HTTP %d", method, resp.StatusCode)
	}
	return b, took, err
}

// loadTook returns the "took" of imcd's "rooms loaded" log record (JSON:
// a duration in nanoseconds), 0 when absent.
func loadTook(log string) time.Duration {
	for line := range strings.Lines(log) {
		var rec struct {
			Msg  string  `json:"msg"`
			Took float64 `json:"took"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "rooms loaded" {
			return time.Duration(rec.Took)
		}
	}
	return 0
}
