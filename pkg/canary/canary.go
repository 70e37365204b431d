// Package canary watches the whole path a MESSAGE takes to imcd: every
// Interval it sends a probe MESSAGE through OpenSIPS (MI t_uac_dlg) to
// imcd's own manager URI, which OpenSIPS's script hands back to imcd like
// any other (event_stream, event_datagram or RabbitMQ), and expects it
// back within Timeout. A subscription OpenSIPS lost, a route that no longer
// raises the event, an exchange that does not exist: each of those leaves
// OpenSIPS answering users 202 while nothing reaches imcd, and imcd would
// look healthy. The Prober turns it into an error for /readyz, a metric
// and a log line that name the broken leg.
//
// A probe is recognised by its sender (the canary's own user) and its
// body, and is never shown to anyone: Seen swallows it before the room
// logic.
package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Leg is the part of the path a failed probe points at.
type Leg string

// Legs of the path.
const (
	// LegMI: OpenSIPS's MI did not take the probe (refused it, or never
	// answered): opensips_mi, or OpenSIPS itself.
	LegMI Leg = "mi"
	// LegScript: OpenSIPS answered the probe, but not 202: the script did
	// not hand it over (the route, raise_event, rabbitmq_publish).
	LegScript Leg = "script"
	// LegEvents: accepted (202) but never back as an event: the
	// subscription, the event transport, the exchange or the queue.
	LegEvents Leg = "events"
)

// User is the user part of the probes' sender, sip:imcd-canary@domain.
const User = "imcd-canary"

// bodyPrefix starts every probe's body: "imcd-canary <instance> <n>".
const bodyPrefix = User + " "

// Defaults.
const (
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 5 * time.Second
)

// Observer is told each probe's verdict (for metrics).
type Observer interface {
	// Probed counts a probe: ok, or failed at leg.
	Probed(ok bool, leg Leg)
}

// Prober sends the probes and judges them. Set the fields, Open, Close.
type Prober struct {
	// Interval between probes; DefaultInterval when 0.
	Interval time.Duration
	// Timeout is how long a probe may take to come back; DefaultTimeout
	// when 0.
	Timeout time.Duration
	// Send sends one probe MESSAGE (From sip:imcd-canary@…, to the
	// manager URI, through OpenSIPS's script) with the given body, and
	// returns its final SIP status; an error when OpenSIPS did not take
	// it. Required.
	Send func(ctx context.Context, body string) (status int, err error)
	// Returned, when set, says whether the probe of body came back to any
	// imcd (several instances sharing RabbitMQ queues: another may have
	// consumed it); it is asked when Seen did not see the probe within
	// Timeout.
	Returned func(ctx context.Context, body string) (bool, error)
	// Ready, when set, says whether the parts of the path imcd sets up
	// itself are in place (its subscription, its consumer): the first
	// probe waits until they are, so that one sent at start, before them,
	// is not taken for a broken path. Once they were, every probe goes:
	// a path that breaks later is what the canary is for.
	Ready func() bool
	// Observer counts the verdicts; nil counts nothing.
	Observer Observer
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger

	log *slog.Logger
	id  string // this instance's mark in the probes

	mu       sync.Mutex
	n        uint64        // the last probe's number
	back     chan struct{} // closed when probe n is seen
	broken   error         // why the path is broken; nil while it is not
	brokenAt time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open starts probing; the first probe goes out at once (once Ready).
func (p *Prober) Open(ctx context.Context) error {
	if p.Send == nil {
		return errors.New("canary: no Send")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.Interval <= 0 {
		p.Interval = DefaultInterval
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	p.log = logging.Child(p.Logger, logkey.SystemCanary)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	p.id = hex.EncodeToString(rnd[:])
	run, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.run(run) }()
	return nil
}

// Close stops probing.
func (p *Prober) Close() error {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
	return nil
}

// Err says why the path is broken (the leg, what happened, since when),
// nil while the last probe came back.
func (p *Prober) Err() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.broken
}

// Probe reports whether body is shaped like a probe's: only then is the
// sender worth looking at (Seen), so that the intake parses no From for
// the MESSAGEs that are not.
func Probe(body string) bool { return strings.HasPrefix(body, bodyPrefix) }

// Seen reports whether a MESSAGE from fromUser with body is a probe (of
// this instance or another): the caller drops it. A probe of this instance
// is counted as back. A nil Prober (the canary off) still recognises the
// probes of other instances.
func (p *Prober) Seen(fromUser, body string) bool {
	if !Probe(body) || fromUser != User {
		return false
	}
	id, num, ok := strings.Cut(body[len(bodyPrefix):], " ")
	if !ok || p == nil || id != p.id {
		return true
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return true
	}
	p.mu.Lock()
	if n == p.n && p.back != nil {
		close(p.back)
		p.back = nil
	}
	p.mu.Unlock()
	return true
}

func (p *Prober) run(ctx context.Context) {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	started := p.Ready == nil
	for {
		if started = started || p.Ready(); started {
			p.probe(ctx)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// probe sends one probe and judges it.
func (p *Prober) probe(ctx context.Context) {
	p.mu.Lock()
	p.n++
	n, back := p.n, make(chan struct{})
	p.back = back
	p.mu.Unlock()
	body := bodyPrefix + p.id + " " + strconv.FormatUint(n, 10)
	deadline := time.Now().Add(p.Timeout)
	sctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	status, err := p.Send(sctx, body)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		p.verdict(LegMI, fmt.Errorf("OpenSIPS's MI did not take the probe: %w", err))
		return
	case status < 200 || status >= 300:
		p.verdict(LegScript, fmt.Errorf("OpenSIPS answered the probe %d, not 202: its script did not hand it to imcd", status))
		return
	}
	select {
	case <-back:
		p.verdict("", nil)
		return
	case <-sctx.Done():
		if ctx.Err() != nil {
			return
		}
	}
	if p.Returned != nil {
		rctx, cancel := context.WithTimeout(ctx, p.Timeout)
		ok, err := p.Returned(rctx, body)
		cancel()
		if err == nil && ok {
			p.verdict("", nil)
			return
		}
	}
	p.verdict(LegEvents, fmt.Errorf("OpenSIPS accepted the probe but it did not come back as an event within %v: "+
		"check the event subscription, the script's route and raise_event (or rabbitmq_publish and its exchange)", p.Timeout))
}

// verdict records a probe's outcome (leg "" and err nil: it came back).
func (p *Prober) verdict(leg Leg, err error) {
	if p.Observer != nil {
		p.Observer.Probed(err == nil, leg)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		if p.broken != nil {
			p.log.Warn("the event path works again: a probe came back", logkey.DownFor, time.Since(p.brokenAt).Round(time.Millisecond).String())
		}
		p.broken = nil
		return
	}
	if p.broken == nil {
		p.brokenAt = time.Now()
		p.log.Error("the event path is broken: MESSAGEs to rooms do not reach imcd", logkey.Leg, string(leg), logkey.Err, err)
	}
	p.broken = fmt.Errorf("event path broken (%s) since %s: %w", leg, p.brokenAt.UTC().Format(time.RFC3339), err)
}
