package main

import (
	"bufio"
	"bytes"
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
	"sync"
	"syscall"
	"time"
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
	window    int      // delivery_window
	hashSize  int      // hash_size
	extra     []string // more "key = value" lines, after imcbench's own
	env       []string // more environment variables
	verbose   bool     // copy imcd's log to stderr
}

// imcd is one running imcd, started with a generated config file.
type imcd struct {
	cmd       *exec.Cmd
	conf      string
	events    string // host:port of event_listen
	transport string
	miHTTP    string
	metrics   string
	log       *tailBuffer
	started   time.Time
	exited    chan struct{}
	exitErr   error
}

// freePorts returns loopback ports, one per network ("tcp" or "udp"), that
// were free a moment ago; the sockets are held until all are chosen, so no
// two are the same.
func freePorts(networks ...string) ([]int, error) {
	ports := make([]int, len(networks))
	var closers []interface{ Close() error }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for i, network := range networks {
		if network == "udp" {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			closers = append(closers, c)
			ports[i] = c.LocalAddr().(*net.UDPAddr).Port
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// configLines returns imcd's configuration for o, with the ports chosen.
// Flood control stays on (its cost is part of every figure) with limits no
// benchmark sender reaches: a few hundred users send all the load. The
// queues keep their defaults (shard_queue 4096, delivery_queue 65536): the
// generators keep far less outstanding, and a larger shard_queue would
// preallocate hundreds of MB of channel buffer that would skew RSS and GC.
func configLines(o imcdOptions, events, miHTTP, metrics string) []string {
	scheme := "tcp:"
	if o.transport == "datagram" {
		scheme = "udp:"
	}
	lines := []string{
		"data_dir = " + o.dir,
		"db_url = " + o.dbURL,
		"create_tables = yes",
		"opensips_mi = " + o.sink.addr(),
		"event_listen = " + scheme + events,
		"event_subscribe = yes",
		`mi_datagram = ""`,
		"mi_http = " + miHTTP,
		`mi_fifo = ""`,
		"metrics_listen = " + metrics,
		"delivery_window = " + strconv.Itoa(o.window),
		"delivery_timeout = 10s",
		"hash_size = " + strconv.Itoa(o.hashSize),
		"log_level = notice",
		"shutdown_grace = 5s",
		"rate_limit = 1000000",
		"rate_burst = 1048576",
	}
	if o.rooms != "" {
		lines = append(lines, "rooms_table = "+o.rooms, "members_table = "+o.members)
	}
	return append(lines, o.extra...)
}

// startIMCD writes the config file and starts imcd, returning once it is
// ready. A port taken by another process between choosing and binding makes
// imcd exit; it is tried again on new ports, three times in all.
func startIMCD(o imcdOptions) (*imcd, error) {
	var err error
	for range 3 {
		var p *imcd
		if p, err = startOnce(o); err == nil {
			return p, nil
		}
	}
	return nil, err
}

func startOnce(o imcdOptions) (*imcd, error) {
	events := "tcp"
	if o.transport == "datagram" {
		events = "udp"
	}
	ports, err := freePorts(events, "tcp", "tcp")
	if err != nil {
		return nil, err
	}
	p := &imcd{
		events:    fmt.Sprintf("127.0.0.1:%d", ports[0]),
		transport: o.transport,
		miHTTP:    fmt.Sprintf("127.0.0.1:%d", ports[1]),
		metrics:   fmt.Sprintf("127.0.0.1:%d", ports[2]),
		log:       &tailBuffer{max: 64 << 10},
		exited:    make(chan struct{}),
	}
	p.conf = filepath.Join(o.dir, "imcd.conf")
	lines := configLines(o, p.events, p.miHTTP, p.metrics)
	if err := os.WriteFile(p.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	p.cmd = exec.Command(o.bin, "-config", p.conf)
	p.cmd.Env = append(os.Environ(), o.env...)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if o.verbose {
		p.cmd.Stderr = io.MultiWriter(p.log, os.Stderr)
	}
	// imcd gets SIGTERM if imcbench dies, so no imcd outlives a run.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", o.bin, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(o.sink, events+":"+p.events, 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls /readyz every 5 ms until it answers 200 and the sink has
// seen imcd subscribe its own event socket (a 200 from another process that
// took the metrics port does not count).
func (p *imcd) waitReady(s *sink, socket string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get("http://" + p.metrics + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && s.subscribedSocket() == socket {
				select {
				case <-p.exited:
				default:
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("imcd not ready after %v\n%s", limit, p.log.String())
		}
		select {
		case <-p.exited:
			return fmt.Errorf("imcd exited before it was ready (%v)\n%s", p.exitErr, p.log.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 20 s).
func (p *imcd) stop() error {
	select {
	case <-p.exited:
		return p.exitErr
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("imcd did not stop within 20 s of SIGTERM")
	}
	return p.exitErr
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

func (p *imcd) pid() int { return p.cmd.Process.Pid }

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
func (p *imcd) metricsText() string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

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
	metricEvents     = "opensips_imc_events_total"
	metricDeliveries = "opensips_imc_deliveries_total"
	metricCommands   = "opensips_imc_commands_total"
	metricDBLatency  = "opensips_imc_db_latency_seconds"
)

// refusals counts what imcd refused or could not send: events refused busy
// and MESSAGEs that found the delivery queue full or got no reply.
func refusals(text string) float64 {
	return metricSum(text, metricEvents, `result="busy"`) +
		metricSum(text, metricDeliveries, `status="queue_full"`) +
		metricSum(text, metricDeliveries, `status="timeout"`) +
		metricSum(text, metricDeliveries, `status="unreachable"`)
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

// tailBuffer keeps the last max bytes written to it (imcd's log).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max/2:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// loadTook returns the "took" of imcd's "rooms loaded" log line (text
// format: took=1.234s), 0 when absent.
func loadTook(log string) time.Duration {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "rooms loaded") {
			continue
		}
		_, v, ok := strings.Cut(line, "took=")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		d, err := time.ParseDuration(v)
		if err == nil {
			return d
		}
	}
	return 0
}
