package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/internal/testdb"
)

// historyTables returns fresh names for the history tables of one run on a
// shared database, as config lines.
func historyTables() (names []string, lines []string) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	suffix := "_ib" + hex.EncodeToString(rnd[:])
	names = []string{"imc_history" + suffix, "imc_topics" + suffix, "imc_history_marks" + suffix}
	return names, []string{"history_table = " + names[0], "topics_table = " + names[1], "history_marks_table = " + names[2]}
}

// dropTables drops tables a run made on the shared MariaDB.
func dropTables(ctx context.Context, e *env, names []string) {
	if e == nil || e.db == nil || e.db.engine != "mysql" {
		return
	}
	for _, n := range names {
		_, _ = e.db.db.ExecContext(ctx, "DROP TABLE IF EXISTS `"+n+"`")
	}
}

// history measures what keeping the rooms' history costs chat: fan-out
// throughput with history off and on, per database and room size.
func (b *bench) history(ctx context.Context) (*table, error) {
	t := &table{title: "History: chat fan-out throughput with the history off and on (closed loop, stream)",
		columns: []string{"database", "room size", "history", "lines/s", "t_uac_dlg/s", "imcd CPU (cores)",
			"history lines written/s", "left out of the history", "lines/s vs off"}}
	t.note("Each row: %v warm-up, then %v measured, the generator keeping about 16k deliveries outstanding (as in the fan-out table). With history on every chat line is also written to the history table, by one writer goroutine in batches of up to 256 lines; chat never waits for it.", b.opt.warmup, b.opt.duration)
	t.note("'left out': lines the writer could not keep up with (its queue of 65,536 lines full): imcd leaves them out of the history rather than slow chat down.")
	sizes := []int{2, 10}
	for _, engine := range b.opt.cmdEngines {
		off := map[int]float64{}
		for _, on := range []bool{false, true} {
			var sets []roomSet
			for _, size := range sizes {
				sets = append(sets, fanoutSet(size))
			}
			names, extra := historyTables()
			mode := "off"
			if on {
				mode = "on"
			}
			extra = append(extra, "history = "+mode)
			b.logf("history %s %s: starting imcd", engine, mode)
			e, _, err := b.startEnv(ctx, envOptions{engine: engine, sets: sets, extra: extra})
			if err != nil {
				t.note("%s skipped: %v", engine, err)
				break
			}
			for _, set := range sets {
				if ctx.Err() != nil {
					break
				}
				// The history the last row queued is written before this
				// one starts, so that each row pays for its own.
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
					if metricSum(e.imcd.metricsText(), "opensips_imc_history_queue") == 0 {
						break
					}
					sleepCtx(ctx, 50*time.Millisecond)
				}
				m0 := e.imcd.metricsText()
				r, err := b.fanoutRun(ctx, e, set)
				if err != nil {
					dropTables(ctx, e, names)
					e.close(ctx)
					return t, fmt.Errorf("%s, history %s, %d members: %w", engine, mode, set.size, err)
				}
				m1 := e.imcd.metricsText()
				written := metricDelta(m0, m1, "opensips_imc_history_lines_written_total")
				dropped := metricDelta(m0, m1, "opensips_imc_history_lines_dropped_total")
				ratio := "-"
				if on && off[set.size] > 0 {
					ratio = fixed(100*r.eventsPerSec()/off[set.size], 0) + " %"
				} else if !on {
					off[set.size] = r.eventsPerSec()
				}
				label := engine
				if engine == "mysql" {
					label = "MariaDB/MySQL"
				}
				b.logf("history %s %s %d members: %s lines/s", engine, mode, set.size, num(r.eventsPerSec()))
				t.add(label, strconv.Itoa(set.size), mode, num(r.eventsPerSec()), num(r.deliveriesPerSec()), fixed(r.imcdCores(), 2),
					num(written/r.secs()), num(dropped), ratio)
			}
			dropTables(ctx, e, names)
			if err := e.close(ctx); err != nil {
				t.note("imcd (%s, history %s) exited with: %v", engine, mode, err)
			}
		}
	}
	return t, nil
}

// Shape of the database-hang run: chat lines/s into 10-member rooms, and
// commands per second per shard (issue 13: 10).
const (
	hangChatRate     = 300
	hangCmdsPerShard = 10
)

// dbhang holds MariaDB's bytes (a database that stops answering) while chat
// and commands go on, and compares chat latency before, during and after.
func (b *bench) dbhang(ctx context.Context) (*table, error) {
	hang := 30 * time.Second
	if b.opt.quick {
		hang = 5 * time.Second
	}
	shards := 1 << b.opt.hashSize
	cmdRate := hangCmdsPerShard * shards
	t := &table{title: "A database that hangs: chat latency and commands before, during and after (MariaDB)",
		columns: []string{"phase", "seconds", "chat lines/s", "chat first p50 ms", "chat first p99 ms", "chat first p99.9 ms",
			"commands/s offered", "commands saved", "commands 'try again later'", "commands refused by the rules"}}
	t.note("A proxy between imcd and MariaDB stops forwarding bytes for %v (connections stay open: the database hangs, it does not refuse), then forwards again. Throughout, %d chat lines/s go into 100 rooms of 10 members and %d commands/s (#join and #exit in turn, %d per shard) into 64 other rooms, open loop.", hang, hangChatRate, cmdRate, hangCmdsPerShard)
	t.note("The workers alternate #join and #exit blindly, so after a #join that could not be saved the next #exit is refused by the room's rules (not a member): the last column.")
	t.note("Chat latency: event written → first of its 9 t_uac_dlg at the sink. Commands are counted from imcd's commands_total by result; chat never waits for the database, commands are answered 'try again later' within command_timeout (3 s) and the store's timeout (2 s).")
	url := b.opt.mysqlURL
	proxy, err := dbproxy.Start(testdb.HostPort(url), dbproxy.Raw)
	if err != nil {
		return t, err
	}
	defer proxy.Close()
	chat := roomSet{prefix: "hc", nRooms: 100, size: 10, user: distinctUsers("hc")}
	cmds := roomSet{prefix: "hk", nRooms: cmdRooms, size: 1, user: func(room, _ int) string { return "owner" + strconv.Itoa(room) }}
	b.logf("dbhang: starting imcd on MariaDB through a proxy")
	e, _, err := b.startEnv(ctx, envOptions{engine: "mysql", sets: []roomSet{chat, cmds}, dbVia: proxy.Addr()})
	if err != nil {
		t.note("skipped: %v", err)
		return t, nil
	}
	defer e.close(ctx)
	snd, err := dialSender(e.imcd.transport, e.imcd.events)
	if err != nil {
		return t, err
	}
	defer snd.close()

	phases := []struct {
		name string
		dur  time.Duration
	}{{"before", b.opt.duration}, {"database hangs", hang}, {"after", b.opt.duration}}
	total := 0
	for _, p := range phases {
		total += int(float64(hangChatRate) * p.dur.Seconds())
	}
	rec := newRecorder(total, false)
	run := b.nextRun()
	e.sink.attach(rec, run)
	defer e.sink.attach(nil, 0)
	joined := make([]bool, cmds.nRooms*4)
	seq, cmdSeq := 0, uint64(1)<<40
	for _, p := range phases {
		if ctx.Err() != nil {
			break
		}
		switch p.name {
		case "database hangs":
			proxy.Hold()
		case "after":
			proxy.Release()
		}
		m0 := e.imcd.metricsText()
		first := seq
		n := int(float64(hangChatRate) * p.dur.Seconds())
		nc := int(float64(cmdRate) * p.dur.Seconds())
		t0, start := b.clk.now(), time.Now()
		chatGap, cmdGap := float64(time.Second)/float64(hangChatRate), float64(time.Second)/float64(cmdRate)
		sentChat, sentCmd := 0, 0
		for (sentChat < n || sentCmd < nc) && ctx.Err() == nil {
			now := float64(b.clk.now() - t0)
			for ; sentChat < n && float64(sentChat)*chatGap <= now; sentChat++ {
				i, j := seq%chat.nRooms, (seq/chat.nRooms)%chat.size
				buf := appendEvent(snd.next(), chat.user(i, j), chat.room(i), uint64(seq), run, "")
				rec.sent[seq].Store(b.clk.now())
				if err := snd.commit(buf); err != nil {
					return t, err
				}
				seq++
			}
			for ; sentCmd < nc && float64(sentCmd)*cmdGap <= now; sentCmd++ {
				w := sentCmd % len(joined)
				text := "#join"
				if joined[w] {
					text = "#exit"
				}
				joined[w] = !joined[w]
				buf := appendEvent(snd.next(), "k"+strconv.Itoa(w), cmds.room(w%cmds.nRooms), cmdSeq, run, text)
				cmdSeq++
				if err := snd.commit(buf); err != nil {
					return t, err
				}
			}
			if err := snd.flush(); err != nil {
				return t, err
			}
			time.Sleep(time.Millisecond)
		}
		secs := time.Since(start).Seconds()
		// The phase's lines get a second to arrive before the next phase.
		sleepCtx(ctx, time.Second)
		m1 := e.imcd.metricsText()
		var firsts []time.Duration
		for i := first; i < seq; i++ {
			if f := rec.first[i].Load(); f != 0 {
				firsts = append(firsts, time.Duration(f-rec.sent[i].Load()))
			}
		}
		p50, p99, p999, _ := quantiles(firsts)
		saved := metricSum(m1, metricCommands, `result="ok"`, `command="join"`) + metricSum(m1, metricCommands, `result="ok"`, `command="exit"`) -
			metricSum(m0, metricCommands, `result="ok"`, `command="join"`) - metricSum(m0, metricCommands, `result="ok"`, `command="exit"`)
		later := metricDelta(m0, m1, metricCommands, `result="db_error"`)
		refused := metricSum(m1, metricCommands, `result="refused"`, `command="exit"`) + metricSum(m1, metricCommands, `result="refused"`, `command="join"`) -
			metricSum(m0, metricCommands, `result="refused"`, `command="exit"`) - metricSum(m0, metricCommands, `result="refused"`, `command="join"`)
		b.logf("dbhang %s: chat p99 %s ms, %s commands saved, %s 'try again later'", p.name, ms(p99), num(saved), num(later))
		t.add(p.name, fixed(secs, 0), num(float64(seq-first)/secs), ms(p50), ms(p99), ms(p999), num(float64(sentCmd)/secs), num(saved), num(later), num(refused))
	}
	return t, nil
}
