package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// cmdRooms is how many rooms the command runs use; worker w works in room
// w % cmdRooms, so up to cmdRooms commands commit in parallel.
const cmdRooms = 64

// maxCommands bounds one command run's recorder.
const maxCommands = 1 << 18

// commands measures write-through commands: each worker alternates #join
// and #exit in its room and waits for imcd's answer (the t_uac_dlg carrying
// In-Reply-To with the command's Call-ID) before sending the next.
func (b *bench) commands(ctx context.Context) (*table, error) {
	t := &table{title: "Write-through commands: #join / #exit, command sent → reply t_uac_dlg received",
		columns: []string{"database", "in flight", "commands/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
			"imcd commit mean ms", "imcd CPU (cores)", "unanswered"}}
	t.note("Closed loop, %v per row: each of N workers sends #join or #exit (in turn) to its own room and waits for the reply; every command is one transaction (INSERT or DELETE of an imc_members row) committed before any notice leaves.", b.opt.duration)
	t.note("'imcd commit mean' is imcd's own opensips_imc_db_latency_seconds{op=\"apply\"} sum/count over the row: the database's share of the latency.")
	set := roomSet{prefix: "c", nRooms: cmdRooms, size: 1, user: func(room, _ int) string { return "owner" + strconv.Itoa(room) }}
	for _, engine := range b.opt.cmdEngines {
		b.logf("commands %s: starting imcd", engine)
		e, _, err := b.startEnv(ctx, envOptions{engine: engine, delay: b.opt.replyDelay, sets: []roomSet{set}})
		if err != nil {
			t.add(engine, "-", "-", "-", "-", "-", "-", "-", "-", "-")
			t.note("%s skipped: %v", engine, err)
			b.logf("commands %s skipped: %v", engine, err)
			continue
		}
		label := engine
		if engine == "mysql" {
			label = "MariaDB/MySQL " + serverVersion(ctx, e.db)
		} else {
			label = "SQLite (WAL, synchronous=FULL)"
		}
		for _, conc := range b.opt.cmdConc {
			if ctx.Err() != nil {
				break
			}
			r, err := b.commandRun(ctx, e, set, conc)
			if err != nil {
				e.close(ctx)
				return t, fmt.Errorf("%s, %d in flight: %w", engine, conc, err)
			}
			p50, p99, p999, pmax := quantiles(r.lat)
			b.logf("commands %s x%d: %s/s, p99 %s ms", engine, conc, num(r.rate), ms(p99))
			t.add(label, strconv.Itoa(conc), num(r.rate), ms(p50), ms(p99), ms(p999), ms(pmax), ms(r.commitMean),
				fixed(r.imcdCores, 2), num(float64(r.unanswered)))
		}
		if err := e.close(ctx); err != nil {
			t.note("imcd (%s) exited with: %v", engine, err)
		}
	}
	return t, nil
}

// serverVersion returns SELECT VERSION(), "" when it fails.
func serverVersion(ctx context.Context, db *benchDB) string {
	var v string
	_ = db.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
	return v
}

type commandResult struct {
	lat        []time.Duration
	rate       float64
	commitMean time.Duration
	imcdCores  float64
	unanswered int
}

// commandRun runs conc workers for the run's duration.
func (b *bench) commandRun(ctx context.Context, e *env, set roomSet, conc int) (commandResult, error) {
	var r commandResult
	snd, err := dialSender(e.imcd.transport, e.imcd.events)
	if err != nil {
		return r, err
	}
	defer snd.close()
	rec := newRecorder(maxCommands, true)
	run := b.nextRun()
	e.sink.attach(rec, run)
	defer e.sink.attach(nil, 0)
	m0 := e.imcd.metricsText()
	cpu0 := e.imcd.cpu()

	type worker struct {
		user, room string
		joined     bool
	}
	workers := make([]worker, conc)
	for w := range workers {
		workers[w] = worker{user: "w" + strconv.Itoa(w), room: set.room(w % set.nRooms)}
	}
	owner := make([]int32, 0, 1<<16) // seq -> worker
	send := func(w int) error {
		seq := len(owner)
		owner = append(owner, int32(w))
		text := "#join"
		if workers[w].joined {
			text = "#exit"
		}
		workers[w].joined = !workers[w].joined
		buf := appendEvent(snd.next(), workers[w].user, workers[w].room, uint64(seq), run, text)
		rec.sent[seq].Store(b.clk.now())
		if err := snd.commit(buf); err != nil {
			return err
		}
		return snd.flush()
	}
	start := time.Now()
	for w := range workers {
		if err := send(w); err != nil {
			return r, err
		}
	}
	inflight := conc
	end := start.Add(b.opt.duration)
	stall := time.NewTimer(3 * time.Second)
	defer stall.Stop()
	done := 0
loop:
	for inflight > 0 && ctx.Err() == nil {
		select {
		case seq := <-rec.done:
			done++
			inflight--
			if time.Now().Before(end) && len(owner) < maxCommands {
				if err := send(int(owner[seq])); err != nil {
					return r, err
				}
				inflight++
			}
			stall.Reset(3 * time.Second)
		case <-stall.C:
			break loop // no answer for 3 s: count the rest unanswered
		case <-ctx.Done():
		}
	}
	wall := time.Since(start)
	e.sink.attach(nil, 0)
	r.unanswered = inflight
	r.rate = float64(done) / wall.Seconds()
	r.imcdCores = (e.imcd.cpu() - cpu0).Seconds() / wall.Seconds()
	for seq := range owner {
		if f := rec.first[seq].Load(); f != 0 {
			r.lat = append(r.lat, time.Duration(f-rec.sent[seq].Load()))
		}
	}
	m1 := e.imcd.metricsText()
	sum := metricDelta(m0, m1, metricDBLatency+"_sum", `op="apply"`)
	cnt := metricDelta(m0, m1, metricDBLatency+"_count", `op="apply"`)
	if cnt > 0 {
		r.commitMean = time.Duration(sum / cnt * float64(time.Second))
	}
	if done == 0 {
		return r, fmt.Errorf("no command was answered\n%s", e.imcd.Log.String())
	}
	return r, ctx.Err()
}
