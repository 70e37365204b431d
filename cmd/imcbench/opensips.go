package main

// The side-by-side ladder through a real OpenSIPS (issue 24): one OpenSIPS
// runs the project's script fragment for rooms chat-* and the native imc
// module for rooms native-*; a SIP agent registers the members with itself
// as their contact and answers every MESSAGE 200; another sends chat lines
// at a constant rate into a room of 11 (10 deliveries a line), native and
// imcd steps alternating at each rate. Per step: deliveries/s, lines
// refused ("room busy", imcd only), lost, latency, and the CPU each
// OpenSIPS process role and imcd spent per delivery.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/internal/opensipsproc"
	"github.com/imcd-sip/imcd/internal/sipua"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// labMembers is the room size: m0 sends, m1..m10 receive.
const labMembers = 11

// labSystem is one thing the ladder measures: native imc, or imcd with
// some configuration.
type labSystem struct {
	name  string   // "native", "imcd", "imcd (ordered)", "imcd (contact)"
	room  string   // native-perf, chat-perf
	lines []string // imcd's extra configuration ("" for native)
	// ordered: outbound_proxy is OpenSIPS's socket of one worker, with
	// proxy_in_order.
	ordered bool
}

// labStep is what one step measured.
type labStep struct {
	rate, sent          int
	accepted, failed    int64 // the sender's final responses: 2xx, others
	delivered, refused  int64
	p50, p99            time.Duration
	imcd                time.Duration // imcd's CPU over the step
	roles               map[string]time.Duration
	imcdSaid            string  // imcd's own count of how its notices ended
	shmUsedMB           float64 // the most OpenSIPS used since it started
	shmPeakMB           float64 // the most it used during this step
	inTime              int64   // deliveries by a second after the last line
	healthy             bool
	duration            time.Duration
	deliveriesPerSecond float64
}

// collector counts what the agent receives, by step: deliveries to
// m1..m10 with their latency, and "busy" refusals to m0.
type collector struct {
	step     atomic.Int64 // the step whose lines are counted
	mu       sync.Mutex
	lat      []time.Duration
	seen     map[string]bool // Call-IDs counted: a retransmission counts once
	refused  atomic.Int64
	received atomic.Int64
}

func (c *collector) onMessage(r *sipua.Received) {
	if r.User == "m0" {
		// imcd's "room busy" refusal quotes no line: it belongs to the
		// step that runs (the collector is reset between steps).
		if strings.Contains(r.Body, " is busy: ") {
			c.refused.Add(1)
		}
		return
	}
	step, sent, ok := parseLine(r.Body)
	if !ok || step != c.step.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil || c.seen[r.CallID] { // nil: the step is over
		return
	}
	c.seen[r.CallID] = true
	c.received.Add(1)
	c.lat = append(c.lat, r.At.Sub(time.Unix(0, sent)))
}

// parseLine finds "s=STEP t=UNIXNANO" in a body (the line itself, quoted in
// a delivery or in a refusal).
func parseLine(body string) (step, sent int64, ok bool) {
	i := strings.Index(body, "s=")
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(body[i:])
	if len(f) < 2 || !strings.HasPrefix(f[1], "t=") {
		return 0, 0, false
	}
	step, err1 := strconv.ParseInt(f[0][2:], 10, 64)
	sent, err2 := strconv.ParseInt(f[1][2:], 10, 64)
	return step, sent, err1 == nil && err2 == nil
}

// opensipsLadder runs the side-by-side ladder.
func (b *bench) opensipsLadder(ctx context.Context) *table {
	o := b.opt
	t := &table{title: "Side by side through a real OpenSIPS: native imc and imcd, room of 11 (10 deliveries a line)",
		columns: []string{"lines/s", "system", "deliveries/s", "lines not taken", "refused lines", "late", "lost", "p50 ms", "p99 ms",
			"imcd µs/delivery", "OpenSIPS µs/delivery", "OpenSIPS roles µs/delivery", "shm in use (peak)", "OpenSIPS healthy", "imcd's own count"}}
	if o.opensips == "" {
		t.note("skipped: no OpenSIPS given (-opensips …/sbin/opensips, or make bench-opensips OPENSIPS=…)")
		return t
	}
	dbURL, cleanup, err := labDatabase(ctx, o.mysqlURL, b.run)
	if err != nil {
		t.note("FAILED: database: %v", err)
		return t
	}
	defer cleanup()
	dir := filepath.Join(b.tmp, "opensips")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.note("FAILED: %v", err)
		return t
	}
	// LoopWorkers: the socket of one worker the "ordered" path goes through.
	osOpts := opensipsproc.Options{Bin: o.opensips, Dir: dir, Fragment: o.fragment,
		SHM: o.opensipsSHM, NativeDB: dbURL, FRTimeout: 4, LoopWorkers: 1}
	if o.verbose { // OpenSIPS's log too, kept with -keep
		f, err := os.Create(filepath.Join(dir, "opensips.log"))
		if err != nil {
			t.note("FAILED: %v", err)
			return t
		}
		defer f.Close()
		osOpts.Log = f
	}
	col := &collector{}
	uas := &sipua.Agent{OnMessage: col.onMessage}
	if err := uas.Open("127.0.0.1:0"); err != nil {
		t.note("FAILED: %v", err)
		return t
	}
	defer uas.Close()
	osp, err := labOpenSIPS(ctx, osOpts, uas)
	if err != nil {
		t.note("FAILED: %v", err)
		return t
	}
	defer func() { osp.Stop(20 * time.Second) }()
	fmt.Fprintf(b.progress, "imcbench: OpenSIPS %s: SIP %s, MI %s\n", o.opensips, osp.SIP, osp.MI)
	uac := &sipua.Agent{}
	if err := uac.Open("127.0.0.1:0"); err != nil {
		t.note("FAILED: %v", err)
		return t
	}
	defer uac.Close()

	var systems []labSystem
	if o.opensipsNative {
		systems = append(systems, labSystem{name: "native", room: "native-perf"})
	}
	for _, path := range o.opensipsPaths {
		s := labSystem{name: "imcd", room: "chat-perf"}
		switch path {
		case "", "proxy":
		case "ordered": // through the proxy's socket of one worker, several in flight
			s.name, s.ordered = "imcd (ordered)", true
		default:
			s.name = "imcd (" + path + ")"
			s.lines = []string{"delivery_path = " + path}
		}
		systems = append(systems, s)
	}
	step := int64(0)
	for _, rate := range o.opensipsLadder {
		for _, sys := range systems {
			if ctx.Err() != nil {
				return t
			}
			step++
			var p *imcdproc.Proc
			if sys.name != "native" {
				p, err = labIMCD(b, osp, dbURL, sys, dir)
				if err != nil {
					t.note("FAILED: %s: %v", sys.name, err)
					return t
				}
			}
			fmt.Fprintf(b.progress, "imcbench: %d lines/s, %s\n", rate, sys.name)
			r := labRun(ctx, osp, p, uac, col, sys, rate, step, o.opensipsStep)
			if p != nil {
				if _, err := p.Stop(20 * time.Second); err != nil {
					t.note("%s at %d lines/s: imcd did not stop within 20 s", sys.name, rate)
				}
			}
			t.add(strconv.Itoa(rate), sys.name, fmt.Sprintf("%.0f", r.deliveriesPerSecond),
				strconv.FormatInt(int64(r.sent)-r.accepted, 10),
				refusedCell(sys, r), strconv.FormatInt(r.delivered-r.inTime, 10),
				strconv.FormatInt(r.accepted*(labMembers-1)-r.delivered-r.refused*(labMembers-1), 10),
				ms(r.p50), ms(r.p99), imcdCell(sys, r), usPer(total(r.roles), r.delivered), rolesCell(r),
				fmt.Sprintf("%.0f MB", r.shmPeakMB), healthyCell(r), r.imcdSaid)
			select {
			case <-ctx.Done():
				return t
			case <-time.After(o.opensipsGap):
			}
			// A collapsed OpenSIPS (its MI silent, or its shared memory
			// still held after the gap: native imc past its ceiling)
			// would fail the next system's step: it starts again.
			used, ok := shmInUse(ctx, osp)
			if ok && used < 0.8*float64(o.opensipsSHM) {
				continue
			}
			t.note("after %s at %d lines/s OpenSIPS %s: restarted for the next step", sys.name, rate, collapsed(used, ok))
			if err := osp.Stop(20 * time.Second); err != nil {
				osp.Kill()
			}
			if osp, err = labOpenSIPS(ctx, osOpts, uas); err != nil {
				t.note("FAILED: restarting OpenSIPS: %v", err)
				return t
			}
		}
	}
	t.note("each step sends for %v from m0 to a room of 11 registered members (m1..m10 at one SIP agent that answers 200); deliveries/s counts what reached m1..m10 by 1 s after the last line; late is what arrived after that (a backlog draining, until nothing came for 2 s); lines not taken are those OpenSIPS did not answer 2xx (its socket dropped them under load, through all of the sender's retransmissions, or it refused them); lost = lines taken×10 − delivered − refused×10; refused lines are those m0 was told were not sent (room busy)", o.opensipsStep)
	t.note("CPU is on-CPU time (/proc/PID/stat) over the step and its drain, per OpenSIPS process role (MI ps) and for imcd, divided by the deliveries; the load generator and the SIP agent (this process) and MariaDB share the same cores")
	t.note("imcd: MariaDB store, history on, rate_limit 0, fanout_limit 0; OpenSIPS: %d UDP workers (and a socket of 1 for the ordered path), fr_timeout 4 s, shm %d MB, the project's fragment %s", 4, o.opensipsSHM, o.fragment)
	return t
}

// labOpenSIPS starts OpenSIPS and registers the members at uas with it.
func labOpenSIPS(ctx context.Context, o opensipsproc.Options, uas *sipua.Agent) (*opensipsproc.Proc, error) {
	osp, err := opensipsproc.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	for i := 0; i < labMembers; i++ {
		if err := uas.Register(ctx, osp.SIP, "m"+strconv.Itoa(i), "127.0.0.1", 24*time.Hour); err != nil {
			osp.Kill()
			return nil, err
		}
	}
	return osp, nil
}

// collapsed says how OpenSIPS looked after a step it did not survive.
func collapsed(usedMB float64, answered bool) string {
	if !answered {
		return "no longer answered its MI"
	}
	return fmt.Sprintf("still held %.0f MB of shared memory after the gap", usedMB)
}

// labIMCD starts imcd for one step against osp.
func labIMCD(b *bench, osp *opensipsproc.Proc, dbURL string, sys labSystem, dir string) (*imcdproc.Proc, error) {
	d := filepath.Join(dir, "imcd-"+strconv.Itoa(int(time.Now().UnixNano()%1e9)))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	lines := []string{
		"db_url = " + dbURL,
		// Tables of its own: native imc empties imc_rooms and imc_members
		// when it starts and writes its rooms back when it stops.
		"rooms_table = imcd_rooms",
		"members_table = imcd_members",
		"create_tables = yes",
		"opensips_mi = " + osp.MI,
		"outbound_proxy = sip:" + osp.SIP.String(),
		`mi_datagram = ""`,
		`mi_fifo = ""`,
		`mi_http = ""`,
		"log_level = notice",
		"history = on",
		"rate_limit = 0",
		"fanout_limit = 0",
		"shutdown_grace = 10s",
	}
	if sys.ordered {
		lines = append(lines, "outbound_proxy = sip:"+osp.Loop.String(), "proxy_in_order = yes")
	}
	lines = append(append(lines, sys.lines...), b.opt.extra...)
	var logCopy *os.File
	if b.opt.verbose {
		logCopy = os.Stderr
	}
	o := imcdproc.Options{Bin: b.opt.imcd, Dir: d, Lines: lines, Env: b.opt.env, ReadyTimeout: 60 * time.Second, LogLimit: 256 << 10}
	if logCopy != nil {
		o.Log = logCopy
	}
	return imcdproc.Start(o)
}

// labRun sends rate lines/s for dur into sys's room and measures.
func labRun(ctx context.Context, osp *opensipsproc.Proc, p *imcdproc.Proc, uac *sipua.Agent, col *collector,
	sys labSystem, rate int, step int64, dur time.Duration) labStep {
	r := labStep{rate: rate, roles: map[string]time.Duration{}}
	col.step.Store(step)
	col.refused.Store(0)
	col.received.Store(0)
	col.mu.Lock()
	col.lat = col.lat[:0]
	col.seen = map[string]bool{}
	col.mu.Unlock()
	procs, _ := osp.Processes(ctx)
	before := cpuOf(procs, p)
	codesBefore, _, _ := uac.Responses()
	room := "sip:" + sys.room + "@127.0.0.1"
	// OpenSIPS's shared memory in use, sampled while the step runs: what
	// a collapse would exhaust.
	shmDone := make(chan float64)
	stopShm := make(chan struct{})
	go func() {
		peak := 0.0
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopShm:
				shmDone <- peak
				return
			case <-t.C:
				sctx, cancel := context.WithTimeout(ctx, time.Second)
				if used, ok := shmInUse(sctx, osp); ok {
					peak = max(peak, used)
				}
				cancel()
			}
		}
	}()
	start := time.Now()
	total := int(float64(rate) * dur.Seconds())
	for r.sent < total && ctx.Err() == nil {
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		for ; r.sent < due; r.sent++ {
			body := "s=" + strconv.FormatInt(step, 10) + " t=" + strconv.FormatInt(time.Now().UnixNano(), 10) + " hello room, line " + strconv.Itoa(r.sent)
			_ = uac.Send(osp.SIP, &sipua.Request{RURI: room, From: "sip:m0@127.0.0.1", Body: body})
		}
		time.Sleep(time.Millisecond)
	}
	// What arrived by a second after the last line was sent counts for
	// the rate; what comes later is late (a backlog draining).
	time.Sleep(time.Second)
	r.inTime = col.received.Load()
	// Drain: until nothing more arrives for 2 s (tm's retransmissions and
	// imcd's paced queue both end within fr_timeout after the last line).
	last, lastAt := col.received.Load()+col.refused.Load(), time.Now()
	for time.Since(lastAt) < 2*time.Second && time.Since(start) < dur+30*time.Second {
		time.Sleep(100 * time.Millisecond)
		if n := col.received.Load() + col.refused.Load(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	r.duration = dur
	r.delivered, r.refused = col.received.Load(), col.refused.Load()
	r.deliveriesPerSecond = float64(r.inTime) / dur.Seconds()
	close(stopShm)
	r.shmPeakMB = <-shmDone
	after := cpuOf(procs, p)
	for role, d := range after {
		r.roles[role] = d - before[role]
	}
	r.imcd = r.roles["imcd"]
	delete(r.roles, "imcd")
	codes, _, _ := uac.Responses()
	for code, n := range codes {
		if d := n - codesBefore[code]; code >= 200 && code < 300 {
			r.accepted += d
		} else {
			r.failed += d
		}
	}
	col.mu.Lock()
	r.p50, r.p99, _, _ = quantiles(col.lat)
	col.seen = nil
	col.mu.Unlock()
	if p != nil {
		m := p.Metrics()
		// The lines imcd handled, against the lines OpenSIPS took: what
		// went missing between the two never reached imcd.
		parts := []string{fmt.Sprintf("lines %.0f", metricSum(m, "opensips_imc_commands_total", `command="chat"`))}
		for _, kind := range []string{"delivered", "failed", "lost", "dropped", "aborted"} {
			if n := metricSum(m, "opensips_imc_delivery_results_total", `kind="`+kind+`"`); n > 0 || kind == "delivered" {
				parts = append(parts, fmt.Sprintf("%s %.0f", kind, n))
			}
		}
		parts = append(parts, fmt.Sprintf("shed %.0f", metricSum(m, "opensips_imc_delivery_shed_total")),
			fmt.Sprintf("queued %.0f", metricSum(m, "opensips_imc_delivery_queued")))
		r.imcdSaid = strings.Join(parts, ", ")
	}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r.shmUsedMB, r.healthy = shmUsed(hctx, osp)
	return r
}

// cpuOf reads the CPU time of each OpenSIPS process, summed by role, and
// of imcd (p, when not nil) as role "imcd".
func cpuOf(procs []opensipsproc.Process, p *imcdproc.Proc) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, pr := range procs {
		if d, err := opensipsproc.CPUTime(pr.PID); err == nil {
			out[roleOf(pr.Type)] += d
		}
	}
	if p != nil {
		if d, err := opensipsproc.CPUTime(p.Pid()); err == nil {
			out["imcd"] += d
		}
	}
	return out
}

// roleOf groups OpenSIPS's process types: the SIP workers of each socket
// together.
func roleOf(typ string) string {
	switch {
	case strings.HasPrefix(typ, "SIP receiver"):
		return "SIP workers"
	case strings.HasPrefix(typ, "TCP"):
		return "TCP"
	case strings.Contains(typ, "imer"), strings.Contains(typ, "time_keeper"):
		return "timers"
	}
	return typ
}

// shmInUse reads the shared memory OpenSIPS uses now, in MB; false when
// its MI does not answer.
func shmInUse(ctx context.Context, osp *opensipsproc.Proc) (float64, bool) {
	res, err := osp.Call(ctx, "get_statistics", map[string]any{"statistics": []string{"shmem:"}})
	if err != nil {
		return 0, false
	}
	var stats map[string]float64
	if json.Unmarshal(res, &stats) != nil {
		return 0, false
	}
	return stats["shmem:real_used_size"] / (1 << 20), true
}

// shmUsed reads the most shared memory OpenSIPS has used so far, in MB;
// false when its MI no longer answers.
func shmUsed(ctx context.Context, osp *opensipsproc.Proc) (float64, bool) {
	res, err := osp.Call(ctx, "get_statistics", map[string]any{"statistics": []string{"shmem:"}})
	if err != nil {
		return 0, false
	}
	var stats map[string]float64
	if json.Unmarshal(res, &stats) != nil {
		return 0, true
	}
	return stats["shmem:max_used_size"] / (1 << 20), true
}

func total(m map[string]time.Duration) time.Duration {
	var t time.Duration
	for _, d := range m {
		t += d
	}
	return t
}

func usPer(d time.Duration, n int64) string {
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", float64(d.Microseconds())/float64(n))
}

func refusedCell(sys labSystem, r labStep) string {
	if sys.name == "native" {
		return "— (not reported)"
	}
	return fmt.Sprintf("%d (%.1f %%)", r.refused, 100*float64(r.refused)/float64(max(r.sent, 1)))
}

func imcdCell(sys labSystem, r labStep) string {
	if sys.name == "native" {
		return "—"
	}
	return usPer(r.imcd, r.delivered)
}

func rolesCell(r labStep) string {
	names := make([]string, 0, len(r.roles))
	for k := range r.roles {
		names = append(names, k)
	}
	slices.Sort(names)
	var parts []string
	for _, k := range names {
		if r.roles[k] < time.Duration(r.delivered)*time.Microsecond/2 {
			continue // under 0.5 µs a delivery: noise
		}
		parts = append(parts, k+" "+usPer(r.roles[k], r.delivered))
	}
	return strings.Join(parts, ", ")
}

func healthyCell(r labStep) string {
	if r.healthy {
		return "yes"
	}
	return "NO: MI silent"
}

// labDatabase makes a MariaDB database of the run's own holding both rooms
// (native-perf in native imc's tables, chat-perf in imcd's), and returns
// its db_url in OpenSIPS's grammar and how to drop it.
func labDatabase(ctx context.Context, mysqlURL string, run uint32) (string, func(), error) {
	u, err := dburl.Parse(mysqlURL)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("imcd_t_lab%d", run)
	admin, err := sql.Open("mysql", mysqlDSN(u, u.Database))
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("%w (the user of -mysql needs CREATE on imcd_t_*)", err)
	}
	cleanup := func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name)
		admin.Close()
	}
	db, err := sql.Open("mysql", mysqlDSN(u, name))
	if err != nil {
		cleanup()
		return "", nil, err
	}
	defer db.Close()
	stmts := []string{
		"CREATE TABLE version (table_name CHAR(32) NOT NULL, table_version INT UNSIGNED DEFAULT 0 NOT NULL, CONSTRAINT t_name_idx UNIQUE (table_name))",
		"INSERT INTO version VALUES ('imc_rooms', 2), ('imc_members', 2)",
		"CREATE TABLE imc_rooms (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL, name CHAR(64) NOT NULL, domain CHAR(64) NOT NULL, flag INT NOT NULL, CONSTRAINT name_domain_idx UNIQUE (name, domain))",
		"CREATE TABLE imc_members (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL, username CHAR(64) NOT NULL, domain CHAR(64) NOT NULL, room CHAR(64) NOT NULL, flag INT NOT NULL, CONSTRAINT account_room_idx UNIQUE (username, domain, room))",
		"CREATE TABLE imcd_rooms LIKE imc_rooms",
		"CREATE TABLE imcd_members LIKE imc_members",
		"INSERT INTO version VALUES ('imcd_rooms', 2), ('imcd_members', 2)",
	}
	for _, room := range []struct{ name, prefix string }{{"native-perf", "imc"}, {"chat-perf", "imcd"}} {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s_rooms (name, domain, flag) VALUES ('%s', '127.0.0.1', 0)", room.prefix, room.name))
		for i := 0; i < labMembers; i++ {
			flag := 0
			if i == 0 {
				flag = 1 // owner
			}
			stmts = append(stmts, fmt.Sprintf("INSERT INTO %s_members (username, domain, room, flag) VALUES ('m%d', '127.0.0.1', 'sip:%s@127.0.0.1', %d)", room.prefix, i, room.name, flag))
		}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	// The same server and credentials, this database (parameters dropped:
	// OpenSIPS's db_mysql takes none).
	base, _, _ := strings.Cut(mysqlURL, "?")
	return base[:strings.LastIndex(base, "/")+1] + name, cleanup, nil
}
