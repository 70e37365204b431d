package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/internal/testdb"
)

// bench runs the scenarios of one imcbench invocation.
type bench struct {
	opt      options
	clk      clock
	tmp      string
	progress io.Writer
	run      uint32 // run id of the last recorded run; Call-IDs carry it
	dirs     int
	tables   []*table
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "imcbench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// nextRun returns a new run id.
func (b *bench) nextRun() uint32 {
	b.run++
	return b.run
}

// scenario runs one scenario group; a failure becomes a note of its table.
func (b *bench) scenario(ctx context.Context, name string) *table {
	var t *table
	var err error
	switch name {
	case "fanout":
		t, err = b.fanout(ctx)
	case "history":
		t, err = b.history(ctx)
	case "dbhang":
		t, err = b.dbhang(ctx)
	case "latency":
		t, err = b.latency(ctx)
	case "commands":
		t, err = b.commands(ctx)
	case "scale":
		t, err = b.scale(ctx)
	case "dead":
		t, err = b.deadRooms(ctx)
	case "ladder":
		t, err = b.ladder(ctx)
	case "rabbitmq":
		t, err = b.rabbitmqThroughput(ctx)
	case "rabbitmq-latency":
		t, err = b.rabbitmqLatency(ctx)
	case "opensips":
		t = b.opensipsLadder(ctx)
	}
	if err != nil {
		t.note("FAILED: %v", err)
		b.logf("%s failed: %v", name, err)
	}
	return t
}

// env is one imcd under test, with its sink and database.
type env struct {
	dir  string
	sink *sink
	db   *benchDB
	imcd *imcd
	opts imcdOptions
}

// envOptions say what startEnv builds.
type envOptions struct {
	engine    string // "sqlite" (default) or "mysql"
	transport string // "stream" (default) or "datagram"
	rateMax   int    // delivery_rate_max; options.rateMax when 0, imcd's default when < 0
	delay     time.Duration
	model     *opensipsModel // the sink plays an OpenSIPS under load
	sets      []roomSet
	extra     []string // more imcd config lines, before the -set ones
	dbVia     string   // host:port of a proxy imcd reaches the database through (mysql)
}

// startEnv starts a sink, fills a database with the room sets and starts
// imcd on them. fill is how long filling took.
func (b *bench) startEnv(ctx context.Context, eo envOptions) (e *env, fill time.Duration, err error) {
	if eo.engine == "" {
		eo.engine = "sqlite"
	}
	if eo.transport == "" {
		eo.transport = "stream"
	}
	if eo.rateMax == 0 {
		eo.rateMax = b.opt.rateMax
	}
	b.dirs++
	e = &env{dir: filepath.Join(b.tmp, fmt.Sprintf("%02d-%s-%s", b.dirs, eo.engine, eo.transport))}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			e.close(ctx)
			e = nil
		}
	}()
	if e.sink, err = startModelSink(eo.delay, b.opt.fullReply, b.clk, eo.model); err != nil {
		return e, 0, err
	}
	if e.db, err = openBenchDB(ctx, eo.engine, e.dir, b.opt.mysqlURL); err != nil {
		return e, 0, fmt.Errorf("%s: %w", eo.engine, err)
	}
	start := time.Now()
	if err = e.db.fill(ctx, eo.sets...); err != nil {
		return e, 0, err
	}
	fill = time.Since(start)
	rooms, members := "", ""
	if eo.engine == "mysql" {
		rooms, members = e.db.rooms, e.db.members
	}
	dbURL := e.db.url
	if eo.dbVia != "" {
		dbURL = testdb.Through(dbURL, eo.dbVia)
	}
	e.opts = imcdOptions{bin: b.opt.imcd, dir: e.dir, transport: eo.transport, dbURL: dbURL,
		rooms: rooms, members: members, sink: e.sink, rateMax: eo.rateMax, hashSize: b.opt.hashSize,
		extra: append(eo.extra, b.opt.extra...), env: b.opt.env, verbose: b.opt.verbose}
	e.imcd, err = startIMCD(e.opts)
	return e, fill, err
}

// restart stops imcd and starts it again on the same database.
func (e *env) restart() error {
	err := e.imcd.stop()
	e.imcd = nil
	if err != nil {
		return fmt.Errorf("stopping imcd: %w", err)
	}
	e.imcd, err = startIMCD(e.opts)
	return err
}

// close stops imcd, drops the tables and closes the sink.
func (e *env) close(ctx context.Context) error {
	var err error
	if e.imcd != nil {
		err = e.imcd.stop()
	}
	if e.db != nil {
		e.db.drop(ctx)
	}
	if e.sink != nil {
		e.sink.close()
	}
	return err
}

// snapshot is what a throughput figure is computed from.
type snapshot struct {
	at        time.Time
	sent      uint64 // events sent
	delivered int64  // t_uac_dlg at the sink
	imcdCPU   time.Duration
	selfCPU   time.Duration
	ctxSw     uint64 // imcd's context switches
	host      hostCPU
}

// selfCPU returns imcbench's own CPU time so far.
func (b *bench) selfCPU() time.Duration {
	d, _ := cpuTime(os.Getpid())
	return d
}

func (b *bench) snap(e *env, snd *sender) snapshot {
	self := b.selfCPU()
	return snapshot{at: time.Now(), sent: snd.sent, delivered: e.sink.delivered.Load(), imcdCPU: e.imcd.cpu(),
		selfCPU: self, ctxSw: ctxSwitches(e.imcd.pid()), host: readHostCPU()}
}

// hostCPU is the machine's CPU time so far, from the first line of
// /proc/stat: busy (user, nice, system, irq, softirq, steal) and steal
// (time the hypervisor gave this VM's CPUs to someone else).
type hostCPU struct {
	busy, steal time.Duration
}

func readHostCPU() hostCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}
	}
	h, _ := parseHostCPU(string(b))
	return h
}

func parseHostCPU(text string) (hostCPU, bool) {
	line, _, _ := strings.Cut(text, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return hostCPU{}, false
	}
	v := make([]uint64, 8)
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return hostCPU{}, false
		}
		v[i] = n
	}
	// user nice system idle iowait irq softirq steal
	tick := func(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return hostCPU{busy: tick(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]), steal: tick(v[7])}, true
}

// otherCores is the CPU the rest of the machine used between s0 and s1
// (everything but imcd and imcbench, steal included), in cores.
func otherCores(s0, s1 snapshot) float64 {
	secs := s1.at.Sub(s0.at).Seconds()
	other := (s1.host.busy - s0.host.busy) - (s1.imcdCPU - s0.imcdCPU) - (s1.selfCPU - s0.selfCPU)
	return max(other.Seconds(), 0) / secs
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
