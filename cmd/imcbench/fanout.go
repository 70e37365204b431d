package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// fanoutRooms is how many rooms of size members a fan-out run spreads its
// events over: enough for every shard to have work, at most 20k members.
func fanoutRooms(size int) int { return max(16, min(1000, 20000/size)) }

// fanoutSet is the room set of the fan-out runs for one room size.
func fanoutSet(size int) roomSet {
	prefix := "f" + strconv.Itoa(size) + "-"
	return roomSet{prefix: prefix, nRooms: fanoutRooms(size), size: size, user: distinctUsers(prefix)}
}

// fanoutWindow is how many events a throughput run keeps outstanding
// (sent, fan-out not yet all at the sink): about 16k deliveries, below
// imcd's default queues (shard_queue 4096 per shard, delivery_queue 65536),
// so nothing is refused and the figure is imcd's pace, not an overload's.
func fanoutWindow(size int) int64 { return int64(min(max(16384/(size-1), 8), 4096)) }

// fanout measures chat fan-out throughput per transport and room size.
func (b *bench) fanout(ctx context.Context) (*table, error) {
	t := &table{title: "Chat fan-out throughput (sink answers every t_uac_dlg at once)",
		columns: []string{"transport", "room size", "rooms", "events/s in", "t_uac_dlg/s out", "imcd CPU (cores)",
			"imcd CPU s per 1M deliveries", "deliveries/s per imcd core", "imcd context switches per 1k deliveries", "imcbench CPU (cores)", "other load (cores)", "lost/refused"}}
	t.note("Each row: %v warm-up, then %v measured; the generator keeps about 16k deliveries outstanding (closed loop), so imcd runs flat out without overflowing its queues.", b.opt.warmup, b.opt.duration)
	t.note("imcd and imcbench (event generator + sink) share the machine's %d CPUs; 'per imcd core' divides by the CPU time imcd actually used (utime+stime from /proc/PID/stat). 'other load': CPU used by everything else on the machine during the row (/proc/stat busy, hypervisor steal included).", numCPU())
	if b.opt.replyDelay > 0 {
		t.note("The sink answers each t_uac_dlg after %v.", b.opt.replyDelay)
	}
	if b.opt.fullReply {
		t.note("The sink's answers carry the 200's headers in \"Message\", as OpenSIPS's do.")
	}
	var sets []roomSet
	for _, size := range b.opt.sizes {
		sets = append(sets, fanoutSet(size))
	}
	for _, tr := range b.opt.transports {
		b.logf("fanout %s: filling %d room sizes and starting imcd", tr, len(sets))
		e, _, err := b.startEnv(ctx, envOptions{transport: tr, delay: b.opt.replyDelay, sets: sets})
		if err != nil {
			return t, err
		}
		for _, set := range sets {
			if ctx.Err() != nil {
				break
			}
			r, err := b.fanoutRun(ctx, e, set)
			if err != nil {
				e.close(ctx)
				return t, fmt.Errorf("%s, %d members: %w", tr, set.size, err)
			}
			b.logf("fanout %s %d members: %s t_uac_dlg/s, %s per imcd core", tr, set.size, num(r.deliveriesPerSec()), num(r.perCore()))
			t.add(tr, num(float64(set.size)), num(float64(set.nRooms)), num(r.eventsPerSec()), num(r.deliveriesPerSec()),
				fixed(r.imcdCores(), 2), fixed(r.cpuPerMillion(), 2), num(r.perCore()), num(float64(r.s1.ctxSw-r.s0.ctxSw)/r.deliveries()*1000), fixed(r.selfCores(), 2),
				fixed(otherCores(r.s0, r.s1), 2), num(float64(r.lost))+" / "+num(r.refused))
		}
		if err := e.close(ctx); err != nil {
			t.note("imcd (%s) exited with: %v", tr, err)
		}
	}
	return t, nil
}

// fanoutResult is one measured fan-out run.
type fanoutResult struct {
	s0, s1  snapshot
	lost    int64   // deliveries that never reached the sink
	refused float64 // events refused busy, notices shed, lost or failed
}

func (r fanoutResult) secs() float64 { return r.s1.at.Sub(r.s0.at).Seconds() }
func (r fanoutResult) deliveries() float64 {
	return float64(r.s1.delivered - r.s0.delivered)
}
func (r fanoutResult) eventsPerSec() float64     { return float64(r.s1.sent-r.s0.sent) / r.secs() }
func (r fanoutResult) deliveriesPerSec() float64 { return r.deliveries() / r.secs() }
func (r fanoutResult) imcdCores() float64        { return (r.s1.imcdCPU - r.s0.imcdCPU).Seconds() / r.secs() }
func (r fanoutResult) selfCores() float64        { return (r.s1.selfCPU - r.s0.selfCPU).Seconds() / r.secs() }
func (r fanoutResult) cpuPerMillion() float64 {
	return (r.s1.imcdCPU - r.s0.imcdCPU).Seconds() / r.deliveries() * 1e6
}
func (r fanoutResult) perCore() float64 {
	return r.deliveries() / (r.s1.imcdCPU - r.s0.imcdCPU).Seconds()
}

// stallLimit is how long a fan-out row may run past its duration while
// nothing it measures has been delivered.
const stallLimit = 10 * time.Second

// fanoutRun drives chat lines into set's rooms as fast as the window
// allows and measures between warm-up end and duration end.
func (b *bench) fanoutRun(ctx context.Context, e *env, set roomSet) (fanoutResult, error) {
	var r fanoutResult
	snd, err := dialSender(e.imcd.transport, e.imcd.events)
	if err != nil {
		return r, err
	}
	defer snd.close()
	m0 := e.imcd.metricsText()
	p := newPump(snd, e.sink, set, b.nextRun())
	start := time.Now()
	measureAt, endAt := start.Add(b.opt.warmup), start.Add(b.opt.warmup+b.opt.duration)
	measuring := false
	var atMeasure int64
	err = p.send(ctx, func() bool {
		now := time.Now()
		if !measuring && !now.Before(measureAt) {
			r.s0, measuring, atMeasure = b.snap(e, snd), true, p.delivered()
		}
		// On a machine busy with other work a short row may see nothing
		// delivered in its window: it runs on until something is, for
		// at most stallLimit more.
		return !now.Before(endAt) && (p.delivered() > atMeasure || !now.Before(endAt.Add(stallLimit)))
	})
	if err != nil {
		return r, err
	}
	r.s1 = b.snap(e, snd)
	r.lost = p.drain(ctx, 10*time.Second)
	r.refused = refusals(e.imcd.metricsText()) - refusals(m0)
	if r.s1.imcdCPU == r.s0.imcdCPU || r.deliveries() == 0 {
		return r, fmt.Errorf("nothing measured (%d deliveries)", int64(r.deliveries()))
	}
	return r, ctx.Err()
}

// pump sends chat lines into a room set round-robin over rooms and, within
// a room, over senders, keeping fanoutWindow events outstanding: sent, but
// their fan-out not all counted by the sink yet.
type pump struct {
	snd    *sender
	sink   *sink
	set    roomSet
	run    uint32
	fan    int64
	window int64
	d0     int64 // the sink's count when the pump started
	rooms  []string
	users  [][]string
	seq    uint64
}

func newPump(snd *sender, s *sink, set roomSet, run uint32) *pump {
	p := &pump{snd: snd, sink: s, set: set, run: run, fan: int64(set.size - 1), window: fanoutWindow(set.size),
		d0: s.delivered.Load(), rooms: make([]string, set.nRooms), users: make([][]string, set.nRooms)}
	for i := range p.rooms {
		p.rooms[i] = set.room(i)
		p.users[i] = make([]string, set.size)
		for j := range p.users[i] {
			p.users[i][j] = set.user(i, j)
		}
	}
	return p
}

// delivered returns the deliveries counted since the pump started.
func (p *pump) delivered() int64 { return p.sink.delivered.Load() - p.d0 }

// send sends until stop, called between batches, returns true. When the
// window is full it sleeps 200 µs rather than spin: the machine's cores
// belong to imcd.
func (p *pump) send(ctx context.Context, stop func() bool) error {
	n := uint64(p.set.nRooms)
	size := uint64(p.set.size)
	for ctx.Err() == nil && !stop() {
		out := int64(p.snd.sent) - p.delivered()/p.fan
		if out >= p.window {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		for range min(p.window-out, 256) {
			i, j := p.seq%n, (p.seq/n)%size
			if err := p.snd.commit(appendEvent(p.snd.next(), p.users[i][j], p.rooms[i], p.seq, p.run, "")); err != nil {
				return err
			}
			p.seq++
		}
		if err := p.snd.flush(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// drain waits up to limit for the fan-out of every event sent and returns
// how many deliveries are missing.
func (p *pump) drain(ctx context.Context, limit time.Duration) int64 {
	want := int64(p.snd.sent) * p.fan
	for deadline := time.Now().Add(limit); p.delivered() < want && time.Now().Before(deadline) && ctx.Err() == nil; {
		sleepCtx(ctx, 5*time.Millisecond)
	}
	return max(want-p.delivered(), 0)
}
