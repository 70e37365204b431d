package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
)

// The RabbitMQ scenarios (event_source = rabbitmq, docs/scale-out.md):
//
//   - rabbitmq: events/s from RabbitMQ queues into one imcd (one queue) and
//     into three imcd sharing the rooms (three queues behind a
//     consistent-hash exchange, each instance leading one);
//   - rabbitmq-latency: event published → t_uac_dlg at the sink, in
//     RabbitMQ mode and, on the same rooms and database, over event_stream:
//     what storing each chat line's key before relaying it costs.

// rmqRooms are the rooms of the RabbitMQ throughput runs: 2 members, so an
// event is one delivery and the figure is the event path's.
func rmqRooms() roomSet {
	return roomSet{prefix: "q", nRooms: 1000, size: 2, user: distinctUsers("q")}
}

// rabbitmqThroughput measures how fast imcd applies a backlog of chat lines
// waiting in RabbitMQ.
func (b *bench) rabbitmqThroughput(ctx context.Context) (*table, error) {
	t := &table{title: "RabbitMQ: a backlog of chat lines consumed, 2-member rooms (1 t_uac_dlg per event)",
		columns: []string{"imcd instances", "queues", "database", "events", "events/s", "imcd CPU (cores, all)",
			"imcd CPU µs per event", "key writes", "keys per write", "key write mean ms", "other load (cores)"}}
	t.note("Each row publishes %s chat lines (the OpenSIPS script's JSON form, publisher confirms) into 1,000 rooms of 2 members while no imcd runs, then starts the instances and times the sink from the first t_uac_dlg to the last: the pace of consuming, applying (each line's key stored in the events table before it is relayed) and delivering, not of publishing. History is off.", num(float64(b.opt.rmqEvents)))
	t.note("Three instances: rabbitmq_queues = its own queue, rabbitmq_standby_queues = the other two; the consistent-hash exchange spreads the rooms over the queues. The instances start together; their start-up skew is inside the figure. Broker, database, imcd and imcbench share the machine's %d CPUs.", numCPU())
	if err := testbroker.Check(b.opt.rabbitURL); err != nil {
		t.note("skipped: no RabbitMQ at %s: %v", redactAMQP(b.opt.rabbitURL), err)
		return t, nil
	}
	for _, engine := range b.opt.rmqEngines {
		for _, n := range []int{1, 3} {
			if ctx.Err() != nil {
				break
			}
			if engine == "sqlite" && n > 1 {
				continue // one SQLite file is one machine's
			}
			r, err := b.rabbitmqDrain(ctx, engine, n)
			if errors.Is(err, errNoDatabase) {
				t.note("%s skipped: %v", dbLabel(engine), err)
				break
			}
			if err != nil {
				return t, fmt.Errorf("%d imcd on %s: %w", n, engine, err)
			}
			b.logf("rabbitmq %d imcd %s: %s events/s", n, engine, num(r.rate))
			t.add(strconv.Itoa(n), strconv.Itoa(n), dbLabel(engine), num(float64(b.opt.rmqEvents)), num(r.rate), fixed(r.cores, 2),
				fixed(r.cpuPerEvent, 1), num(r.writes), fixed(r.perWrite, 1), ms(r.writeMean), fixed(r.other, 2))
		}
	}
	return t, nil
}

// errNoDatabase: a row's database could not be opened; the row is skipped,
// as the other scenarios skip theirs.
var errNoDatabase = errors.New("database not available")

func dbLabel(engine string) string {
	if engine == "mysql" {
		return "MariaDB/MySQL"
	}
	return "SQLite"
}

type drainResult struct {
	rate, cores, cpuPerEvent, writes, perWrite, other float64
	writeMean                                         time.Duration
}

// rabbitmqDrain runs one throughput row: n instances, n queues.
func (b *bench) rabbitmqDrain(ctx context.Context, engine string, n int) (r drainResult, err error) {
	set := rmqRooms()
	rs, err := b.rabbitEnv(ctx, engine, n, set)
	if err != nil {
		return r, err
	}
	defer rs.close(ctx)
	run := b.nextRun()
	pub, err := dialPublisher(b.opt.rabbitURL, rs.top.Exchange)
	if err != nil {
		return r, err
	}
	defer pub.close()
	total := b.opt.rmqEvents
	for seq := range total {
		i, j := seq%set.nRooms, (seq/set.nRooms)%set.size
		if err := pub.publish(benchEvent(set.user(i, j), set.room(i), uint64(seq), run)); err != nil {
			return r, err
		}
	}
	if err := pub.wait(ctx); err != nil {
		return r, err
	}
	d0 := rs.sink.delivered.Load()
	if err := rs.start(ctx, b, n); err != nil {
		return r, err
	}
	// From the first delivery to the last.
	var s0 snapshot
	for rs.sink.delivered.Load() == d0 {
		if err := rs.alive(); err != nil {
			return r, err
		}
		sleepCtx(ctx, time.Millisecond)
	}
	s0 = rs.snap(b)
	m0 := rs.metrics()
	last, lastChange := rs.sink.delivered.Load(), time.Now()
	for rs.sink.delivered.Load()-d0 < int64(total) && ctx.Err() == nil {
		sleepCtx(ctx, time.Millisecond)
		if d := rs.sink.delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > 10*time.Second {
			return r, fmt.Errorf("stalled at %d of %d deliveries", d-d0, total)
		}
	}
	s1 := rs.snap(b)
	m1 := rs.metrics()
	secs := s1.at.Sub(s0.at).Seconds()
	done := float64(s1.delivered - s0.delivered)
	r.rate = done / secs
	r.cores = (s1.imcdCPU - s0.imcdCPU).Seconds() / secs
	r.cpuPerEvent = (s1.imcdCPU - s0.imcdCPU).Seconds() / done * 1e6
	r.other = otherCores(s0, s1)
	r.writes = metricDelta(m0, m1, metricDBLatency+"_count", `op="mark"`)
	keys := metricDelta(m0, m1, "opensips_imc_rabbitmq_event_keys_total")
	if r.writes > 0 {
		r.perWrite = keys / r.writes
		sum := metricDelta(m0, m1, metricDBLatency+"_sum", `op="mark"`)
		r.writeMean = time.Duration(sum / r.writes * float64(time.Second))
	}
	return r, ctx.Err()
}

// benchEvent is chat line seq of run from user to room, as the OpenSIPS
// script publishes it.
func benchEvent(user, room string, seq uint64, run uint32) opensips.Event {
	return opensips.Event{Req: imc.Request{From: "sip:" + user + "@" + benchDomain, To: "sip:" + room + "@" + benchDomain,
		RURI: "sip:" + room + "@" + benchDomain, CallID: string(appendCallID(nil, seq, run)), ContentType: "text/plain",
		Body: string(appendChatText(nil, seq))}, FromTag: "t" + strconv.FormatUint(seq, 16), CSeq: "1", SrcIP: "127.0.0.1",
		SrcPort: 5071, Proto: "udp"}
}

// rabbitEnv is the database, sink and topology of a RabbitMQ row, and the
// imcd instances once started.
type rabbitEnv struct {
	dir    string
	url    string // the broker
	sink   *sink
	db     *benchDB
	events string // events_table
	top    *rabbitmq.Topology
	procs  []*imcdproc.Proc
	opts   imcdOptions
}

func (b *bench) rabbitEnv(ctx context.Context, engine string, queues int, sets ...roomSet) (e *rabbitEnv, err error) {
	b.dirs++
	e = &rabbitEnv{dir: fmt.Sprintf("%s/%02d-rabbitmq-%s", b.tmp, b.dirs, engine), url: b.opt.rabbitURL}
	defer func() {
		if err != nil {
			e.close(ctx)
		}
	}()
	if e.sink, err = startSink(b.opt.replyDelay, b.opt.fullReply, b.clk); err != nil {
		return e, err
	}
	if e.db, err = openBenchDB(ctx, engine, e.dir, b.opt.mysqlURL); err != nil {
		return e, fmt.Errorf("%w: %s: %w", errNoDatabase, engine, err)
	}
	if err = e.db.fill(ctx, sets...); err != nil {
		return e, err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "imcbench." + hex.EncodeToString(rnd[:])
	e.events = "imc_events_ib" + hex.EncodeToString(rnd[:])
	e.top = &rabbitmq.Topology{Exchange: name, Queues: rabbitmq.ShardQueues(name, queues)}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err = e.top.Declare(dctx, b.opt.rabbitURL); err != nil {
		e.top = nil
		return e, err
	}
	rooms, members := "", ""
	if engine == "mysql" {
		rooms, members = e.db.rooms, e.db.members
	}
	e.opts = imcdOptions{bin: b.opt.imcd, transport: "stream", dbURL: e.db.url, rooms: rooms, members: members, sink: e.sink,
		rateMax: b.opt.rateMax, hashSize: b.opt.hashSize, env: b.opt.env, verbose: b.opt.verbose}
	return e, nil
}

// start starts n instances at once, instance i leading queue i.
func (e *rabbitEnv) start(ctx context.Context, b *bench, n int) error {
	procs := make([]*imcdproc.Proc, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		o := e.opts
		o.dir = fmt.Sprintf("%s/imcd%d", e.dir, i)
		o.extra = append(e.lines(b, i, n), b.opt.extra...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = startRabbitIMCD(o)
		}()
	}
	wg.Wait()
	for _, p := range procs {
		if p != nil {
			e.procs = append(e.procs, p)
		}
	}
	return errors.Join(errs...)
}

// lines configure instance i of n in RabbitMQ mode.
func (e *rabbitEnv) lines(b *bench, i, n int) []string {
	prefix := strings.TrimSuffix(e.top.Queues[0], ".0")
	lines := []string{"event_source = rabbitmq", "rabbitmq_url = " + b.opt.rabbitURL, "rabbitmq_exchange = " + e.top.Exchange,
		"rabbitmq_queue_prefix = " + prefix, "rabbitmq_shards = " + strconv.Itoa(len(e.top.Queues)),
		"events_table = " + e.events, "rabbitmq_queues = " + strconv.Itoa(i), "history = off"}
	var standby []string
	for j := range n {
		if j != i {
			standby = append(standby, strconv.Itoa(j))
		}
	}
	if len(standby) > 0 {
		lines = append(lines, "rabbitmq_standby_queues = "+strings.Join(standby, ","))
	}
	return lines
}

// startRabbitIMCD starts one imcd in RabbitMQ mode and returns once it is
// ready (consuming).
func startRabbitIMCD(o imcdOptions) (*imcdproc.Proc, error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	return imcdproc.Start(imcdproc.Options{Bin: o.bin, Dir: o.dir, Lines: configLines(o), Env: o.env,
		ReadyTimeout: 60 * time.Second, LogLimit: 64 << 10})
}

// alive fails when an instance exited.
func (e *rabbitEnv) alive() error {
	for _, p := range e.procs {
		select {
		case <-p.Exited():
			return fmt.Errorf("imcd exited with %d\n%s", p.ExitCode(), p.Log.String())
		default:
		}
	}
	return nil
}

// snap is snapshot over every instance.
func (e *rabbitEnv) snap(b *bench) snapshot {
	s := snapshot{at: time.Now(), delivered: e.sink.delivered.Load(), selfCPU: b.selfCPU(), host: readHostCPU()}
	for _, p := range e.procs {
		d, _ := cpuTime(p.Pid())
		s.imcdCPU += d
	}
	return s
}

// metrics concatenates every instance's /metrics.
func (e *rabbitEnv) metrics() string {
	var sb strings.Builder
	for _, p := range e.procs {
		sb.WriteString(p.Metrics())
	}
	return sb.String()
}

func (e *rabbitEnv) close(ctx context.Context) {
	for _, p := range e.procs {
		p.Stop(20 * time.Second)
	}
	if e.top != nil {
		_ = testbroker.Delete(e.url, []string{e.top.Exchange}, e.top.Queues)
	}
	if e.db != nil {
		if e.db.engine == "mysql" && e.db.db != nil && e.events != "" {
			_, _ = e.db.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+e.events)
			_, _ = e.db.db.ExecContext(ctx, "DELETE FROM version WHERE table_name = ?", e.events)
		}
		e.db.drop(ctx)
	}
	if e.sink != nil {
		e.sink.close()
	}
}
