// Command imcbench measures what imcd costs: it starts the real imcd binary
// once per scenario with a generated config file, plays OpenSIPS on imcd's
// real sockets (events in over event_stream or event_datagram, t_uac_dlg
// answered by a lean mi_datagram sink, which for the delivery scenarios
// models a loaded OpenSIPS) and prints one table per scenario group:
//
//   - fanout: chat fan-out throughput for rooms of 2, 10, 100 and 1,000
//     members, with imcd's CPU per million deliveries;
//   - latency: event → first and last t_uac_dlg of its fan-out, p50/p99/p99.9,
//     at fixed offered loads;
//   - commands: write-through #join/#exit rate and latency on SQLite and
//     MariaDB/MySQL;
//   - scale: start-up load of 10k and 100k rooms of 10 members, peak RSS and
//     imc_list_rooms latency;
//   - dead: issue 11's room of 21 where 10 members never answer, at 100
//     lines/s per room, against the sink playing a loaded OpenSIPS;
//   - ladder: 10-member rooms at rising line rates against the same
//     modelled OpenSIPS (bounded MI buffer, finite MI rate);
//   - rabbitmq: events/s from a RabbitMQ backlog into one imcd and into three
//     sharded imcd (event_source = rabbitmq);
//   - rabbitmq-latency: a chat line's latency in RabbitMQ mode next to
//     event_stream's, on the same rooms and database.
//
// Usage:
//
//	go build -o bin/imcd ./cmd/imcd && go run ./cmd/imcbench -imcd bin/imcd -markdown var/bench/imcbench.md
//
// The MariaDB/MySQL rows use IMCD_TEST_MYSQL_URL (default
// mysql://imcd:imcd@127.0.0.1:3306/imcd_test): tables with a unique suffix,
// dropped afterwards. The RabbitMQ rows use IMCD_TEST_RABBITMQ_URL (default
// amqp://guest:guest@127.0.0.1:5672/): an exchange and queues of their own,
// deleted afterwards; without a broker their tables say so. See docs/benchmarks.md for what each figure means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
)

// options are imcbench's flags.
type options struct {
	imcd         string
	scenarios    []string
	transports   []string
	sizes        []int
	rates        []int
	cmdEngines   []string
	cmdConc      []int
	scaleRooms   []int
	scaleEngine  []string
	duration     time.Duration
	warmup       time.Duration
	replyDelay   time.Duration
	fullReply    bool
	rateMax      int
	deadRooms    []int
	deadDuration time.Duration
	ladder       []int
	hashSize     int
	mysqlURL     string
	markdown     string
	quick        bool
	verbose      bool
	keep         bool
	extra        []string
	env          []string
	rabbitURL    string
	rmqEngines   []string
	rmqEvents    int

	// The side-by-side ladder through a real OpenSIPS (opensips.go).
	opensips       string
	fragment       string
	opensipsLadder []int
	opensipsPaths  []string
	opensipsStep   time.Duration
	opensipsGap    time.Duration
	opensipsSHM    int
	opensipsNative bool
}

var allScenarios = []string{"fanout", "latency", "commands", "scale", "dead", "ladder", "rabbitmq", "rabbitmq-latency", "history", "dbhang"}

// moreScenarios are run only when asked for by name.
var moreScenarios = []string{"opensips"}

func main() {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imcbench:", err)
	}
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	if _, err := os.Stat(o.imcd); err != nil {
		return 2, fmt.Errorf("-imcd %s: %w (build it with: go build -o bin/imcd ./cmd/imcd)", o.imcd, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "imcbench-")
	if err != nil {
		return 1, err
	}
	if !o.keep {
		defer os.RemoveAll(tmp)
	}
	b := &bench{opt: o, clk: clock{base: time.Now()}, tmp: tmp, progress: stderr, run: uint32(time.Now().Unix() % 100000)}
	fmt.Fprintf(stderr, "imcbench: %s\n", machine())
	start := time.Now()
	failed := false
	for _, sc := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		t := b.scenario(ctx, sc)
		t.writeText(stdout)
		b.tables = append(b.tables, t)
		for _, n := range t.notes {
			if strings.HasPrefix(n, "FAILED") {
				failed = true
			}
		}
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "\nimcbench: done in %v\n", took.Round(time.Second))
	if o.markdown != "" {
		if err := b.writeMarkdown(o.markdown, args, took); err != nil {
			return 1, err
		}
		fmt.Fprintf(stderr, "imcbench: tables written to %s\n", o.markdown)
	}
	if ctx.Err() != nil {
		return 1, ctx.Err()
	}
	if failed {
		return 1, errors.New("some scenarios failed (see the notes)")
	}
	return 0, nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("imcbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var scenarios, transports, sizes, rates, cmdEngines, cmdConc, scaleRooms, scaleEngines, deadRooms, ladder, rmqEngines, osLadder, osPaths string
	fs.StringVar(&o.imcd, "imcd", "bin/imcd", "the imcd binary to measure")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "scenario groups to run, in order")
	fs.StringVar(&transports, "transports", "stream,datagram", "event transports (fanout, latency)")
	fs.StringVar(&sizes, "sizes", "2,10,100,1000", "room sizes of the fan-out runs")
	fs.StringVar(&rates, "rates", "1000,2000,4000,10000", "offered events/s of the latency runs (10-member rooms)")
	fs.StringVar(&cmdEngines, "cmd-db", "sqlite,mysql", "databases of the command runs")
	fs.StringVar(&cmdConc, "cmd-concurrency", "1,16", "commands in flight in the command runs")
	fs.StringVar(&scaleRooms, "scale", "0,10000,100000", "room counts (10 members each) of the scale runs")
	fs.StringVar(&scaleEngines, "scale-db", "mysql,sqlite", "databases of the scale runs")
	fs.StringVar(&deadRooms, "dead-rooms", "1,4,7,10", "numbers of dead-member rooms (21 members, 10 never answer, 100 lines/s each) of the dead runs")
	fs.DurationVar(&o.deadDuration, "dead-duration", 10*time.Second, "sending time of each dead run (longer than fr_timeout, 4 s, to show members marked unreachable)")
	fs.StringVar(&ladder, "ladder", "250,500,700,850,1000,1250", "offered lines/s of the paced ladder (10-member rooms: 9 deliveries each)")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each throughput, latency and command run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before each throughput run")
	fs.DurationVar(&o.replyDelay, "reply-delay", 0, "how long the sink waits before answering a t_uac_dlg (0 = at once)")
	fs.BoolVar(&o.fullReply, "full-reply", false, "answer t_uac_dlg with the 200's headers in \"Message\" as OpenSIPS does (default: the bare Status)")
	fs.IntVar(&o.rateMax, "rate-max", 100000, "imcd's delivery_rate_max for the scenarios against imcbench's sink (which answers at once, unlike an OpenSIPS): high, so that imcd's own cost is measured; the delivery scenarios use imcd's defaults")
	fs.IntVar(&o.hashSize, "hash-size", 4, "imcd's hash_size (2^n shards)")
	fs.StringVar(&o.mysqlURL, "mysql", envOr("IMCD_TEST_MYSQL_URL", defaultMySQLURL), "MariaDB/MySQL db_url for the mysql rows (tables with a unique suffix, dropped afterwards)")
	fs.StringVar(&o.rabbitURL, "rabbitmq", envOr("IMCD_TEST_RABBITMQ_URL", testbroker.DefaultURL), "RabbitMQ broker of the rabbitmq rows (an exchange and queues of their own, deleted afterwards)")
	fs.StringVar(&rmqEngines, "rabbitmq-db", "mysql", "databases of the rabbitmq rows (three instances share one only on mysql)")
	fs.IntVar(&o.rmqEvents, "rabbitmq-events", 60000, "events of the backlog each rabbitmq throughput row consumes")
	fs.StringVar(&o.opensips, "opensips", "", "opensips scenario: the real OpenSIPS binary (…/sbin/opensips of an unpacked build)")
	fs.StringVar(&o.fragment, "opensips-fragment", "scripts/opensips/imcd.cfg", "opensips scenario: the project's script fragment merged into OpenSIPS's configuration")
	fs.StringVar(&osLadder, "opensips-ladder", "400,600,800,1000,1200,1500", "opensips scenario: offered lines/s (room of 11: 10 deliveries each), native and imcd alternating at each")
	fs.StringVar(&osPaths, "opensips-paths", "proxy,ordered,contact", "opensips scenario: imcd's paths to measure, each a system of its own: delivery_path proxy or contact, or ordered (proxy through a socket of one worker, proxy_in_order)")
	fs.DurationVar(&o.opensipsStep, "opensips-step", 20*time.Second, "opensips scenario: sending time of each step")
	fs.DurationVar(&o.opensipsGap, "opensips-gap", 8*time.Second, "opensips scenario: pause between steps (OpenSIPS frees its transactions after wt_timer)")
	fs.BoolVar(&o.opensipsNative, "opensips-native", true, "opensips scenario: measure native imc too (false: imcd's steps only, for comparing imcd builds)")
	fs.IntVar(&o.opensipsSHM, "opensips-shm", 1024, "opensips scenario: OpenSIPS's shared memory in MB (-m)")
	fs.StringVar(&o.markdown, "markdown", "", "also write the tables as Markdown to this file")
	fs.BoolVar(&o.quick, "quick", false, "a short smoke run: 1 s runs, fewer sizes, 10k rooms only")
	fs.BoolVar(&o.verbose, "v", false, "copy imcd's log to stderr")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, SQLite files)")
	fs.Func("set", "extra imcd config line `key=value` (repeatable), after imcbench's own", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want key=value")
		}
		o.extra = append(o.extra, strings.TrimSpace(k)+" = "+strings.TrimSpace(v))
		return nil
	})
	fs.Func("imcd-env", "extra environment variable `KEY=VALUE` for imcd (repeatable), e.g. GOGC=200", func(s string) error {
		if !strings.Contains(s, "=") {
			return errors.New("want KEY=VALUE")
		}
		o.env = append(o.env, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		quick := map[string]func(){
			"duration":        func() { o.duration = time.Second },
			"warmup":          func() { o.warmup = 300 * time.Millisecond },
			"sizes":           func() { sizes = "2,10,100" },
			"rates":           func() { rates = "1000" },
			"scale":           func() { scaleRooms = "10000" },
			"cmd-concurrency": func() { cmdConc = "1,8" },
			"dead-rooms":      func() { deadRooms = "1,4" },
			"dead-duration":   func() { o.deadDuration = 6 * time.Second },
			"ladder":          func() { ladder = "250,1000" },
			"rabbitmq-events": func() { o.rmqEvents = 5000 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	o.scenarios = splitList(scenarios)
	for _, s := range o.scenarios {
		if !contains(allScenarios, s) && !contains(moreScenarios, s) {
			return o, fmt.Errorf("-scenarios: unknown %q (want some of %s)", s, strings.Join(append(allScenarios, moreScenarios...), ","))
		}
	}
	o.transports = splitList(transports)
	for _, t := range o.transports {
		if t != "stream" && t != "datagram" {
			return o, fmt.Errorf("-transports: unknown %q (want stream, datagram)", t)
		}
	}
	o.cmdEngines, o.scaleEngine, o.rmqEngines = splitList(cmdEngines), splitList(scaleEngines), splitList(rmqEngines)
	for _, e := range append(append(append([]string{}, o.cmdEngines...), o.scaleEngine...), o.rmqEngines...) {
		if e != "sqlite" && e != "mysql" {
			return o, fmt.Errorf("unknown database %q (want sqlite, mysql)", e)
		}
	}
	var err error
	if o.sizes, err = intList("sizes", sizes, 2); err != nil {
		return o, err
	}
	if o.rates, err = intList("rates", rates, 1); err != nil {
		return o, err
	}
	if o.cmdConc, err = intList("cmd-concurrency", cmdConc, 1); err != nil {
		return o, err
	}
	if o.scaleRooms, err = intList("scale", scaleRooms, 0); err != nil {
		return o, err
	}
	if o.deadRooms, err = intList("dead-rooms", deadRooms, 1); err != nil {
		return o, err
	}
	if o.ladder, err = intList("ladder", ladder, 1); err != nil {
		return o, err
	}
	if o.opensipsLadder, err = intList("opensips-ladder", osLadder, 1); err != nil {
		return o, err
	}
	o.opensipsPaths = splitList(osPaths)
	if contains(o.scenarios, "opensips") && o.opensips == "" {
		return o, errors.New("the opensips scenario needs a real OpenSIPS: -opensips …/sbin/opensips " +
			"(make bench-opensips OPENSIPS=…; scripts/real-opensips.sh finds or unpacks a build)")
	}
	for _, p := range []*string{&o.opensips, &o.fragment} {
		if *p == "" {
			continue
		}
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	if o.duration <= 0 || o.deadDuration <= 0 || o.warmup < 0 || o.rateMax < 1 || o.hashSize < 0 || o.hashSize > 10 || o.rmqEvents < 1 {
		return o, errors.New("-duration, -warmup, -rate-max, -hash-size or -rabbitmq-events out of range")
	}
	if abs, err := filepath.Abs(o.imcd); err == nil {
		o.imcd = abs
	}
	return o, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(name, s string, least int) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n < least {
			return nil, fmt.Errorf("-%s: %q is not an integer ≥ %d", name, f, least)
		}
		out = append(out, n)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// writeMarkdown writes every table with the machine and the command line.
func (b *bench) writeMarkdown(path string, args []string, took time.Duration) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "## imcbench run of %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(f, "- Machine: %s\n", machine())
	fmt.Fprintf(f, "- Command: `imcbench %s`\n", strings.Join(args, " "))
	fmt.Fprintf(f, "- Duration of the whole run: %v\n", took.Round(time.Second))
	for _, t := range b.tables {
		t.writeMarkdown(f)
	}
	return f.Close()
}
