package main

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// latencyRoomSize is the room size of the latency runs (the target is set
// for 10-member rooms).
const latencyRoomSize = 10

// latency measures event → first and last delivery at fixed offered loads.
func (b *bench) latency(ctx context.Context) (*table, error) {
	t := &table{title: "Latency: event sent → t_uac_dlg received by the sink, 10-member rooms (9 deliveries per event)",
		columns: []string{"transport", "offered events/s", "sent events/s", "t_uac_dlg/s", "first p50 ms", "first p99 ms",
			"first p99.9 ms", "last p50 ms", "last p99 ms", "last p99.9 ms", "last max ms", "imcd CPU (cores)", "other load (cores)", "incomplete"}}
	t.note("Open loop: events leave at a fixed rate whatever imcd does, for %v per row; 'first'/'last' are the first and the last of an event's 9 t_uac_dlg requests, timed from just before the event was written to the socket until the sink read the request.", b.opt.duration)
	t.note("Rooms: 1,000 rooms of 10 members; each event goes to the next room, from the next member.")
	t.note("'no imcd' rows calibrate the machine: the generator writes the 9 t_uac_dlg of each event itself, straight to the sink's socket, at the same pace; what they show (one loopback hop, two processes' scheduling) is in every other row too.")
	set := roomSet{prefix: "l", nRooms: 1000, size: latencyRoomSize, user: distinctUsers("l")}
	for _, tr := range b.opt.transports {
		b.logf("latency %s: starting imcd", tr)
		e, _, err := b.startEnv(ctx, envOptions{transport: tr, delay: b.opt.replyDelay, sets: []roomSet{set}})
		if err != nil {
			return t, err
		}
		if tr == b.opt.transports[0] {
			for _, rate := range b.opt.rates {
				r, err := b.baselineRun(ctx, e.sink, rate, set.size-1)
				if err != nil {
					e.close(ctx)
					return t, err
				}
				f50, f99, f999, _ := quantiles(r.first)
				l50, l99, l999, lmax := quantiles(r.last)
				t.add("no imcd", num(float64(rate)), num(r.sentRate), num(r.deliveryRate), ms(f50), ms(f99), ms(f999),
					ms(l50), ms(l99), ms(l999), ms(lmax), "-", fixed(r.otherCores, 2), num(float64(r.incomplete)))
			}
		}
		for _, rate := range b.opt.rates {
			if ctx.Err() != nil {
				break
			}
			r, err := b.latencyRun(ctx, e, set, rate)
			if err != nil {
				e.close(ctx)
				return t, err
			}
			f50, f99, f999, _ := quantiles(r.first)
			l50, l99, l999, lmax := quantiles(r.last)
			b.logf("latency %s %d ev/s: first p50 %s p99 %s ms, last p99 %s ms", tr, rate, ms(f50), ms(f99), ms(l99))
			if offered := float64(rate * (set.size - 1)); r.deliveryRate < 0.9*offered {
				t.note("%s at %s events/s is over capacity: %s t_uac_dlg/s offered, %s delivered; imcd's queues grow for the whole row, so its latencies are queueing time (and only events whose fan-out completed within 10 s of the end are counted).",
					tr, num(float64(rate)), num(offered), num(r.deliveryRate))
			}
			t.add(tr, num(float64(rate)), num(r.sentRate), num(r.deliveryRate), ms(f50), ms(f99), ms(f999),
				ms(l50), ms(l99), ms(l999), ms(lmax), fixed(r.imcdCores, 2), fixed(r.otherCores, 2), num(float64(r.incomplete)))
		}
		if err := e.close(ctx); err != nil {
			t.note("imcd (%s) exited with: %v", tr, err)
		}
	}
	return t, nil
}

type latencyResult struct {
	first, last  []time.Duration
	incomplete   int
	sentRate     float64
	deliveryRate float64
	imcdCores    float64
	otherCores   float64
}

// latencyRun sends rate events/s for the run's duration, each timed, then
// waits (at most 10 s) for their fan-outs to complete.
func (b *bench) latencyRun(ctx context.Context, e *env, set roomSet, rate int) (latencyResult, error) {
	var r latencyResult
	snd, err := dialSender(e.imcd.transport, e.imcd.events)
	if err != nil {
		return r, err
	}
	defer snd.close()
	n := int(float64(rate) * b.opt.duration.Seconds())
	fan := set.size - 1
	rec := newRecorder(n, false)
	run := b.nextRun()
	e.sink.attach(rec, run)
	defer e.sink.attach(nil, 0)
	rooms, users := make([]string, set.nRooms), make([][]string, set.nRooms)
	for i := range rooms {
		rooms[i] = set.room(i)
		users[i] = make([]string, set.size)
		for j := range users[i] {
			users[i][j] = set.user(i, j)
		}
	}
	s0 := b.snap(e, snd)
	cpu0, d0 := s0.imcdCPU, s0.delivered
	start := time.Now()
	err = b.paced(ctx, n, rate, func(seq int) error {
		i, j := seq%set.nRooms, (seq/set.nRooms)%set.size
		buf := appendEvent(snd.next(), users[i][j], rooms[i], uint64(seq), run, "")
		rec.sent[seq].Store(b.clk.now())
		return snd.commit(buf)
	}, snd.flush)
	if err != nil {
		return r, err
	}
	sendTime := time.Since(start)
	r.sentRate = float64(n) / sendTime.Seconds()
	// Wait for the stragglers; stop early when nothing moves for a second.
	last, lastChange := e.sink.delivered.Load(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if rec.complete(n, fan) == n {
			break
		}
		sleepCtx(ctx, 10*time.Millisecond)
		if d := e.sink.delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > time.Second {
			break
		}
	}
	wall := time.Since(start)
	s1 := b.snap(e, snd)
	r.imcdCores = (s1.imcdCPU - cpu0).Seconds() / wall.Seconds()
	r.otherCores = otherCores(s0, s1)
	r.deliveryRate = float64(e.sink.delivered.Load()-d0) / wall.Seconds()
	e.sink.attach(nil, 0)
	r.first, r.last, r.incomplete = rec.latencies(n, fan)
	if len(r.first) == 0 {
		return r, errors.New("latency: no event had its whole fan-out delivered")
	}
	return r, ctx.Err()
}

// baselineRun is latencyRun without imcd: for each event the generator
// sends fan t_uac_dlg-shaped datagrams straight to the sink, so the sink
// times one loopback hop under the same pace and machine load.
func (b *bench) baselineRun(ctx context.Context, s *sink, rate, fan int) (latencyResult, error) {
	var r latencyResult
	snd, err := dialSender("datagram", s.conn.LocalAddr().String())
	if err != nil {
		return r, err
	}
	defer snd.close()
	n := int(float64(rate) * b.opt.duration.Seconds())
	rec := newRecorder(n, false)
	run := b.nextRun()
	s.attach(rec, run)
	defer s.attach(nil, 0)
	self0, host0, d0 := b.selfCPU(), readHostCPU(), s.delivered.Load()
	start := time.Now()
	err = b.paced(ctx, n, rate, func(seq int) error {
		rec.sent[seq].Store(b.clk.now())
		for range fan {
			buf := append(snd.next(), `{"jsonrpc":"2.0","method":"t_uac_dlg","params":{"body":"<u@bench.test>: `...)
			buf = appendChatText(buf, uint64(seq))
			buf = append(buf, `"},"id":`...)
			buf = strconv.AppendInt(buf, int64(seq), 10)
			if err := snd.commit(append(buf, '}')); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		return r, err
	}
	r.sentRate = float64(n) / time.Since(start).Seconds()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && rec.complete(n, fan) < n; {
		sleepCtx(ctx, 10*time.Millisecond)
	}
	wall := time.Since(start)
	s.attach(nil, 0)
	r.deliveryRate = float64(s.delivered.Load()-d0) / wall.Seconds()
	host1 := readHostCPU()
	r.otherCores = max((host1.busy-host0.busy-(b.selfCPU()-self0)).Seconds(), 0) / wall.Seconds()
	r.first, r.last, r.incomplete = rec.latencies(n, fan)
	return r, ctx.Err()
}
