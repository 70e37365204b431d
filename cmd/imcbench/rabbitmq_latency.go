package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
)

// rabbitmqLatency measures event → first t_uac_dlg with the event coming
// from RabbitMQ, and over event_stream on the same rooms and database.
func (b *bench) rabbitmqLatency(ctx context.Context) (*table, error) {
	t := &table{title: "RabbitMQ: latency of a chat line, event sent → t_uac_dlg received, 10-member rooms (9 deliveries per event)",
		columns: []string{"event source", "database", "offered events/s", "sent events/s", "first p50 ms", "first p99 ms",
			"first p99.9 ms", "last p99 ms", "key write mean ms", "keys per write", "imcd CPU (cores)", "incomplete"}}
	t.note("The 'cold' row is the first event of each of the 1,000 rooms after imcd started consuming: each waits for its room to be re-read from the database (a new consumer session, as after a failover); re-reads asked for while the shard's committer is busy go out together.")
	t.note("Open loop as in the latency table, %v per row, one imcd. 'rabbitmq': the generator publishes each event to the broker (the script's JSON form; confirms collected at the end) and imcd consumes it, stores its key in the events table (batched with the other keys waiting) and only then relays it. 'stream': the same events over event_stream to an imcd on the same rooms and database (chat never waits for the database there). History is off in both, so that only the event path differs.", b.opt.duration)
	if err := testbroker.Check(b.opt.rabbitURL); err != nil {
		t.note("skipped: no RabbitMQ at %s: %v", redactAMQP(b.opt.rabbitURL), err)
		return t, nil
	}
	set := roomSet{prefix: "rl", nRooms: 1000, size: latencyRoomSize, user: distinctUsers("rl")}
	for _, engine := range b.opt.rmqEngines {
		// event_stream first, on its own imcd.
		e, _, err := b.startEnv(ctx, envOptions{engine: engine, delay: b.opt.replyDelay, sets: []roomSet{set}, extra: []string{"history = off"}})
		if err != nil {
			t.note("%s skipped: %v", dbLabel(engine), err)
			continue
		}
		for _, rate := range b.opt.rates {
			r, err := b.latencyRun(ctx, e, set, rate)
			if err != nil {
				e.close(ctx)
				return t, err
			}
			f50, f99, f999, _ := quantiles(r.first)
			_, l99, _, _ := quantiles(r.last)
			t.add("stream", dbLabel(engine), num(float64(rate)), num(r.sentRate), ms(f50), ms(f99), ms(f999), ms(l99), "–", "–",
				fixed(r.imcdCores, 2), num(float64(r.incomplete)))
		}
		e.close(ctx)
		rs, err := b.rabbitEnv(ctx, engine, 1, set)
		if err != nil {
			return t, err
		}
		if err := rs.start(ctx, b, 1); err != nil {
			rs.close(ctx)
			return t, err
		}
		// The first event of each room waits for the room to be re-read
		// (a new consumer session): a row of its own, then the steady
		// state.
		cold := true
		for _, rate := range append([]int{b.opt.rates[0]}, b.opt.rates...) {
			if ctx.Err() != nil {
				break
			}
			n := int(float64(rate) * b.opt.duration.Seconds())
			label := "rabbitmq"
			if cold {
				n, label = set.nRooms, "rabbitmq, cold (1st event of each room)"
			}
			r, err := b.rabbitLatencyRun(ctx, rs, set, rate, n)
			if err != nil {
				rs.close(ctx)
				return t, err
			}
			f50, f99, f999, _ := quantiles(r.first)
			_, l99, _, _ := quantiles(r.last)
			b.logf("rabbitmq latency %s %d ev/s: first p50 %s p99 %s ms", engine, rate, ms(f50), ms(f99))
			t.add(label, dbLabel(engine), num(float64(rate)), num(r.sentRate), ms(f50), ms(f99), ms(f999), ms(l99),
				ms(r.writeMean), fixed(r.perWrite, 1), fixed(r.imcdCores, 2), num(float64(r.incomplete)))
			cold = false
		}
		rs.close(ctx)
	}
	return t, nil
}

type rabbitLatency struct {
	latencyResult
	writeMean time.Duration
	perWrite  float64
}

// rabbitLatencyRun publishes n events at rate events/s, each timed, then
// waits (at most 10 s) for their fan-outs.
func (b *bench) rabbitLatencyRun(ctx context.Context, e *rabbitEnv, set roomSet, rate, n int) (rabbitLatency, error) {
	var r rabbitLatency
	pub, err := dialPublisher(b.opt.rabbitURL, e.top.Exchange)
	if err != nil {
		return r, err
	}
	defer pub.close()
	fan := set.size - 1
	rec := newRecorder(n, false)
	run := b.nextRun()
	e.sink.attach(rec, run)
	defer e.sink.attach(nil, 0)
	events := make([]opensips.Event, n)
	for seq := range events {
		i, j := seq%set.nRooms, (seq/set.nRooms)%set.size
		events[seq] = benchEvent(set.user(i, j), set.room(i), uint64(seq), run)
	}
	s0, m0 := e.snap(b), e.metrics()
	start := time.Now()
	err = b.paced(ctx, n, rate, func(seq int) error {
		rec.sent[seq].Store(b.clk.now())
		return pub.publish(events[seq])
	}, nil)
	if err != nil {
		return r, err
	}
	r.sentRate = float64(n) / time.Since(start).Seconds()
	if err := pub.wait(ctx); err != nil {
		return r, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && rec.complete(n, fan) < n && ctx.Err() == nil; {
		sleepCtx(ctx, 10*time.Millisecond)
	}
	s1, m1 := e.snap(b), e.metrics()
	r.imcdCores = (s1.imcdCPU - s0.imcdCPU).Seconds() / s1.at.Sub(s0.at).Seconds()
	e.sink.attach(nil, 0)
	r.first, r.last, r.incomplete = rec.latencies(n, fan)
	writes := metricDelta(m0, m1, metricDBLatency+"_count", `op="mark"`)
	if writes > 0 {
		sum := metricDelta(m0, m1, metricDBLatency+"_sum", `op="mark"`)
		r.writeMean = time.Duration(sum / writes * float64(time.Second))
		r.perWrite = metricDelta(m0, m1, "opensips_imc_rabbitmq_event_keys_total") / writes
	}
	if len(r.first) == 0 {
		return r, errors.New("rabbitmq latency: no event had its whole fan-out delivered")
	}
	return r, ctx.Err()
}

// publisher publishes events as the OpenSIPS script does, with publisher
// confirms collected at the end (wait), so that publishing keeps its pace.
type publisher struct {
	conn     *amqp.Connection
	ch       *amqp.Channel
	exchange string
	pending  []*amqp.DeferredConfirmation
	buf      []byte
}

func dialPublisher(url, exchange string) (*publisher, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &publisher{conn: conn, ch: ch, exchange: exchange}, nil
}

func (p *publisher) publish(ev opensips.Event) error {
	p.buf = rabbitmq.AppendJSON(p.buf[:0], &ev)
	dc, err := p.ch.PublishWithDeferredConfirm(p.exchange, ev.Req.RURI, true, false,
		amqp.Publishing{ContentType: rabbitmq.ContentTypeJSON, Body: p.buf})
	if err != nil {
		return err
	}
	p.pending = append(p.pending, dc)
	return nil
}

// wait waits for the confirms of everything published.
func (p *publisher) wait(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, dc := range p.pending {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("publish not confirmed by the broker (%v)", err)
		}
	}
	p.pending = p.pending[:0]
	return nil
}

func (p *publisher) close() { p.conn.Close() }

// redactAMQP drops the password from an AMQP URL.
func redactAMQP(url string) string {
	u, err := amqp.ParseURI(url)
	if err != nil {
		return "(unparsable URL)"
	}
	u.Password = ""
	return u.String()
}
