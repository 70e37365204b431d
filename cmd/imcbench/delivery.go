package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The delivery scenarios run imcd with its default delivery settings
// against the sink playing the measured OpenSIPS (opensipsModel): an MI
// receive buffer of modelRecvBuffer requests, one MI process serving
// modelRate requests/s, and, in the dead-member rooms, members who never
// answer (408 after modelFrTimeout, tm's fr_timeout as measured).
const (
	modelRecvBuffer = 256
	modelRate       = 8000
	modelFrTimeout  = 4 * time.Second

	deadLive, deadGone = 10, 10 // a dead-member room: sender + 10 live + 10 who never answer
	deadLineRate       = 100    // lines/s into each room (issue 11's measurement)
	deadPrefix         = "gone"

	// belowSaturation is the share of the MI's capacity below which a row
	// must lose nothing: AIMD cuts the rate by a fifth when replies come
	// late, so it oscillates between about 0.8 and 1 of the capacity, and
	// an offered load above 0.8 leaves it too little headroom to catch up
	// with a backlog.
	belowSaturation = 0.8
)

// deadSet is k rooms of 21: member 0 sends, 1–10 answer, 11–20 never do.
func deadSet(k int) roomSet {
	return roomSet{prefix: "dr", nRooms: k, size: 1 + deadLive + deadGone, user: func(room, j int) string {
		if j > deadLive {
			return deadPrefix + strconv.Itoa(room) + "-" + strconv.Itoa(j)
		}
		return "dru" + strconv.Itoa(room) + "-" + strconv.Itoa(j)
	}}
}

// deadRooms is issue 11's room: 21 members, 10 of whom are registered at
// an address that never answers, the sender posting 100 lines/s; one row
// per number of such rooms.
func (b *bench) deadRooms(ctx context.Context) (*table, error) {
	t := &table{title: "Dead-member rooms: 21 members, 10 never answer (408 after fr_timeout 4 s), 100 lines/s per room, against a modelled OpenSIPS MI (256-request buffer, 8,000 requests/s)",
		columns: []string{"rooms", "lines/s", "live deliveries offered/s", "live deliveries/s during the run", "live delivered during the run", "first p50 ms", "first p99 ms",
			"last p50 ms", "last p99 ms", "requests to dead members", "MI drops", "lost", "shed", "dropped (kept overflow)", "imcd CPU (cores)"}}
	t.note("Each row: a fresh imcd (default delivery settings) and %v of lines at 100/s per room, round robin over the rooms; each line goes to 10 live and 10 dead members.", b.opt.deadDuration)
	t.note("'during the run': live deliveries that reached the sink before the last line was sent (native imc through a real OpenSIPS: 100 %%; imcd with the former 256-slot window: 6.7 %%). 'first'/'last': from just before the line was written to the event socket until the first/last of its 10 live t_uac_dlg requests reached the sink (lines whose 10 live deliveries arrived within 10 s of the end).")
	t.note("'requests to dead members': t_uac_dlg written to them; each is held to member_inflight (4) until its 408, then marked unreachable and kept for (member_queue 100, the rest dropped and counted). 'MI drops': requests the modelled receive buffer had no room for; 'lost': notices OpenSIPS never answered after the retries; 'shed': notices refused because the room was busy (their sender told).")
	b.noteExtra(t)
	for _, k := range b.opt.deadRooms {
		if ctx.Err() != nil {
			break
		}
		set := deadSet(k)
		b.logf("dead rooms %d: starting imcd", k)
		e, _, err := b.startEnv(ctx, envOptions{transport: "stream", rateMax: -1, sets: []roomSet{set},
			model: &opensipsModel{recvBuffer: modelRecvBuffer, rate: modelRate, deadPrefix: deadPrefix, frTimeout: modelFrTimeout}})
		if err != nil {
			return t, err
		}
		r, err := b.deadRun(ctx, e, set)
		if cerr := e.close(ctx); cerr != nil {
			t.note("imcd (%d rooms) exited with: %v", k, cerr)
		}
		if err != nil {
			return t, err
		}
		f50, f99, _, _ := quantiles(r.first)
		l50, l99, _, _ := quantiles(r.last)
		offered := float64(k * deadLineRate * deadLive)
		b.logf("dead rooms %d: %.1f %% of live deliveries during the run, last p99 %s ms, lost %g", k, 100*r.during, ms(l99), r.lost)
		t.add(num(float64(k)), num(float64(k*deadLineRate)), num(offered), num(r.liveRate), fixed(100*r.during, 1)+" %",
			ms(f50), ms(f99), ms(l50), ms(l99), num(float64(r.deadRequests)), num(float64(r.miDrops)), num(r.lost), num(r.shed), num(r.dropped), fixed(r.imcdCores, 2))
		if offered < belowSaturation*modelRate && (r.lost > 0 || r.during < 0.99) {
			t.note("FAILED: %d rooms (below the MI's capacity): %.1f %% of live deliveries during the run, %g lost", k, 100*r.during, r.lost)
		}
	}
	return t, nil
}

type deadResult struct {
	first, last  []time.Duration
	during       float64 // share of the live deliveries at the sink when the last line left
	liveRate     float64 // live deliveries/s during the run
	deadRequests int64
	miDrops      int64
	lost, shed   float64
	dropped      float64
	imcdCores    float64
}

// deadRun sends 100 lines/s into each room of set for the scenario's
// duration, then waits for the live fan-outs to complete.
func (b *bench) deadRun(ctx context.Context, e *env, set roomSet) (deadResult, error) {
	var r deadResult
	snd, err := dialSender("stream", e.imcd.events)
	if err != nil {
		return r, err
	}
	defer snd.close()
	rate := set.nRooms * deadLineRate
	n := int(float64(rate) * b.opt.deadDuration.Seconds())
	rec := newRecorder(n, false)
	run := b.nextRun()
	e.sink.attach(rec, run)
	defer e.sink.attach(nil, 0)
	senders := make([]string, set.nRooms)
	rooms := make([]string, set.nRooms)
	for i := range rooms {
		rooms[i], senders[i] = set.room(i), set.user(i, 0)
	}
	m0 := e.imcd.metricsText()
	dead0, drops0 := e.sink.dead.Load(), e.sink.dropped.Load()
	cpu0 := e.imcd.cpu()
	start := time.Now()
	err = b.paced(ctx, n, rate, func(seq int) error {
		i := seq % set.nRooms
		buf := appendEvent(snd.next(), senders[i], rooms[i], uint64(seq), run, "")
		rec.sent[seq].Store(b.clk.now())
		return snd.commit(buf)
	}, snd.flush)
	if err != nil {
		return r, err
	}
	runTime := time.Since(start)
	during := rec.total(n)
	r.during = float64(during) / float64(n*deadLive)
	r.liveRate = float64(during) / runTime.Seconds()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil && rec.complete(n, deadLive) < n; {
		sleepCtx(ctx, 20*time.Millisecond)
	}
	r.imcdCores = (e.imcd.cpu() - cpu0).Seconds() / time.Since(start).Seconds()
	e.sink.attach(nil, 0)
	r.first, r.last, _ = rec.latencies(n, deadLive)
	m1 := e.imcd.metricsText()
	r.lost = metricDelta(m0, m1, metricResults, `kind="lost"`)
	r.dropped = metricDelta(m0, m1, metricResults, `kind="dropped"`)
	r.shed = metricDelta(m0, m1, metricShed)
	r.deadRequests, r.miDrops = e.sink.dead.Load()-dead0, e.sink.dropped.Load()-drops0
	if len(r.first) == 0 {
		return r, errors.New("dead rooms: no line reached its 10 live members")
	}
	return r, ctx.Err()
}

// ladder offers 10-member rooms a rising event rate against the modelled
// OpenSIPS MI: below its capacity nothing may be lost; above it imcd must
// refuse lines (busy) rather than lose requests in the MI's buffer.
func (b *bench) ladder(ctx context.Context) (*table, error) {
	t := &table{title: "Paced ladder: 10-member rooms (9 deliveries per line) against a modelled OpenSIPS MI (256-request receive buffer, 8,000 requests/s)",
		columns: []string{"offered lines/s", "offered deliveries/s", "deliveries/s", "first p50 ms", "first p99 ms", "last p50 ms", "last p99 ms",
			"MI drops", "lost", "shed", "pacing rate at end (req/s)", "imcd CPU (cores)", "incomplete lines"}}
	t.note("One imcd with its default delivery settings; each row %v of open-loop lines over 1,000 rooms of 10, then up to 10 s for the stragglers. 'first'/'last': line written → first/last of its 9 t_uac_dlg at the sink, for lines whose fan-out completed.", b.opt.duration)
	t.note("'MI drops': requests the modelled receive buffer had no room for (what the kernel drops at a real OpenSIPS's MI socket); 'lost': notices never answered after imcd's retries; 'shed': notices refused at once because delivery was saturated (the sender told the room is busy). Below %s deliveries/s (%.0f %% of the MI's capacity) lost must be 0.", num(belowSaturation*modelRate), 100*belowSaturation)
	b.noteExtra(t)
	set := roomSet{prefix: "ld", nRooms: 1000, size: latencyRoomSize, user: distinctUsers("ld")}
	b.logf("ladder: starting imcd")
	e, _, err := b.startEnv(ctx, envOptions{transport: "stream", rateMax: -1, sets: []roomSet{set},
		model: &opensipsModel{recvBuffer: modelRecvBuffer, rate: modelRate}})
	if err != nil {
		return t, err
	}
	defer e.close(ctx)
	for _, rate := range b.opt.ladder {
		if ctx.Err() != nil {
			break
		}
		m0 := e.imcd.metricsText()
		drops0 := e.sink.dropped.Load()
		r, err := b.latencyRun(ctx, e, set, rate)
		if err != nil {
			return t, err
		}
		// Let what is still queued finish before the next row (and the
		// gauges catch up).
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; sleepCtx(ctx, 200*time.Millisecond) {
			m := e.imcd.metricsText()
			if metricSum(m, "opensips_imc_delivery_queued") == 0 && metricSum(m, "opensips_imc_delivery_in_flight") == 0 {
				break
			}
		}
		m1 := e.imcd.metricsText()
		lost, shed := metricDelta(m0, m1, metricResults, `kind="lost"`), metricDelta(m0, m1, metricShed)
		drops := e.sink.dropped.Load() - drops0
		f50, f99, _, _ := quantiles(r.first)
		l50, l99, _, _ := quantiles(r.last)
		offered := float64(rate * (latencyRoomSize - 1))
		b.logf("ladder %d lines/s: %s deliveries/s, last p99 %s ms, MI drops %d, lost %g, shed %g", rate, num(r.deliveryRate), ms(l99), drops, lost, shed)
		t.add(num(float64(rate)), num(offered), num(r.deliveryRate), ms(f50), ms(f99), ms(l50), ms(l99),
			num(float64(drops)), num(lost), num(shed), num(metricSum(m1, "opensips_imc_delivery_rate")), fixed(r.imcdCores, 2), num(float64(r.incomplete)))
		if offered < belowSaturation*modelRate && lost > 0 {
			t.note("FAILED: %d lines/s (below the MI's capacity): %g notices lost", rate, lost)
		}
	}
	return t, nil
}

// noteExtra says which imcd settings -set changed from the defaults.
func (b *bench) noteExtra(t *table) {
	if len(b.opt.extra) > 0 {
		t.note("imcd settings from -set: %s.", strings.Join(b.opt.extra, "; "))
	}
}
