package opensips

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// sendFailed ends the request id whose datagram could not be sent. When the
// kernel says the port is closed (a previous datagram bounced), nothing in
// flight will be answered either: they all end as unreachable.
func (c *MIClient) sendFailed(id uint64, err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		c.portClosed(err)
		return
	}
	if p := c.take(id); p != nil {
		c.noteUnreachable(err)
		c.complete(p, notSentOutcome(err), false)
	}
}

// portClosed ends every request in flight as unreachable: the kernel got an
// ICMP port unreachable for OpenSIPS's MI port, so OpenSIPS is not running
// (or restarted and lost them).
func (c *MIClient) portClosed(err error) {
	c.noteUnreachable(err)
	c.finish(c.takeAll(), notSentOutcome(err))
}

// readLoop matches reply datagrams to requests by id: over UDP by polling
// (pollLoop), over a unix socket as each reply comes.
func (c *MIClient) readLoop(ctx context.Context) {
	defer c.wg.Done()
	if c.udp != nil {
		c.pollLoop(ctx)
		return
	}
	buf := make([]byte, maxReply)
	var p fastjson.Parser
	var done []finished
	uc := c.unix
	for {
		n, from, err := uc.ReadFromUnix(buf)
		if err != nil {
			if !c.readFailed(ctx, err) {
				return
			}
			continue
		}
		if !c.fromOpenSIPS(from) {
			continue
		}
		done = c.handleReply(&p, buf[:n], time.Time{}, done[:0])
		c.report(done)
	}
}

// pollLoop reads the replies nobody else reads: while requests are in
// flight, it polls when no Poll happened for PollEvery; with none in
// flight it sleeps until the next request (register kicks it).
func (c *MIClient) pollLoop(ctx context.Context) {
	t := time.NewTimer(c.PollEvery)
	defer t.Stop()
	for {
		if c.idle() {
			select {
			case <-c.kick:
			case <-ctx.Done():
				return
			}
		}
		wait := c.PollEvery - time.Duration(time.Now().UnixNano()-c.lastPoll.Load())
		if wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			continue // someone may have polled meanwhile
		}
		if c.Poll() < 0 {
			return
		}
	}
}

// Poll reads, without waiting, the replies that have arrived over UDP, and
// reports them; it returns how many it read, -1 once the client is closed.
// The scheduler calls it every time it runs, so that under load replies
// cost no wake-up of their own. Safe for concurrent use: a Poll while
// another reads returns 0.
func (c *MIClient) Poll() int {
	if c.udp == nil || !c.readMu.TryLock() {
		return 0
	}
	defer c.readMu.Unlock()
	c.lastPoll.Store(time.Now().UnixNano())
	total := 0
	for {
		n, err := c.udp.TryReadBatch(c.rbufs, c.rsizes, c.rstamps)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return -1
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				c.portClosed(err)
				continue // the error is reported once; what follows may be read
			}
			c.log.Warn("MI read failed", logkey.Err, err)
			return total
		}
		c.rdone = c.rdone[:0]
		for i := range n {
			c.rdone = c.handleReply(&c.rparser, c.rbufs[i][:c.rsizes[i]], c.rstamps[i], c.rdone)
		}
		c.report(c.rdone)
		clear(c.rdone)
		total += n
		if n < len(c.rbufs) {
			return total
		}
	}
}

// readFailed handles a failed read; false means the reader must stop.
func (c *MIClient) readFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		c.portClosed(err)
		return true
	}
	c.log.Warn("MI read failed", logkey.Err, err)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(10 * time.Millisecond):
	}
	return true
}

// report hands the outcomes of one read to their Send callers, saying
// which are followed by more.
func (c *MIClient) report(done []finished) {
	for i, f := range done {
		c.complete(f.p, f.o, i < len(done)-1)
	}
}

// handleReply matches a reply datagram to its request: a Call's is
// answered at once, a Send's outcome is appended to done for report. A
// panic is recovered and logged: one bad datagram never stops the reader.
func (c *MIClient) handleReply(p *fastjson.Parser, b []byte, at time.Time, done []finished) (out []finished) {
	out = done
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic while handling an MI reply", logkey.Panic, fmt.Sprint(r))
		}
	}()
	m, err := jsonrpc.Decode(p, b)
	if err != nil || m.IsRequest() || m.ID == nil {
		c.badReply("not a JSON-RPC response", b)
		return
	}
	id, err := m.ID.Uint64()
	if err != nil {
		c.badReply("id is not one of ours", b)
		return
	}
	pd := c.take(id)
	if pd == nil {
		// Answered after its timeout, or a duplicate.
		c.log.Debug("MI reply for no pending request", logkey.ID, id)
		return
	}
	if pd.reply != nil {
		var r callReply
		if m.Error != nil {
			if e, derr := jsonrpc.DecodeError(m.Error); derr == nil {
				r.err = e
			} else {
				r.err = fmt.Errorf("%w: malformed error object", ErrBadReply)
			}
		} else {
			r.result = m.Result.MarshalTo(nil)
		}
		pd.reply <- r
		return
	}
	o := outcomeOf(&m)
	o.At = at
	if o.Err != nil && errors.Is(o.Err, ErrBadReply) {
		c.badReply(o.Reason, b)
	}
	return append(done, finished{p: pd, o: o})
}

// fromOpenSIPS reports whether a datagram on the unix reply socket comes
// from OpenSIPS's MI socket; others are dropped, and logged once per
// interval since a mismatch usually means opensips_mi spells the path
// differently from mi_datagram's socket_name (a symlink, a relative path).
func (c *MIClient) fromOpenSIPS(from *net.UnixAddr) bool {
	if from != nil && filepath.Clean(from.Name) == filepath.Clean(c.unixRaddr.Name) {
		return true
	}
	name := "(unnamed socket)"
	if from != nil {
		name = from.Name
	}
	if ok, suppressed := c.replyLog.Allow(time.Now()); ok {
		c.log.Warn("dropped an MI datagram from another socket than OpenSIPS's: check that the MI address is the exact path of mi_datagram's socket_name",
			logkey.From, name, logkey.Expected, c.unixRaddr.Name, logkey.Suppressed, suppressed)
	}
	return false
}

func (c *MIClient) badReply(why string, b []byte) {
	if ok, suppressed := c.replyLog.Allow(time.Now()); ok {
		c.log.Warn("unexpected MI datagram", logkey.Err, why, logkey.Datagram, truncate(b, 200), logkey.Suppressed, suppressed)
	}
}

// reapLoop ends the deliveries whose reply did not come within Timeout.
func (c *MIClient) reapLoop(ctx context.Context) {
	defer c.wg.Done()
	tick := min(max(c.Timeout/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var expired []*pending
	lost := lostOutcome(c.Timeout)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			expired = expired[:0]
			c.mu.Lock()
			for id, p := range c.inflight {
				if p.reply == nil && now.After(p.deadline) {
					expired = append(expired, p)
					delete(c.inflight, id)
					c.sends.Add(-1)
				}
			}
			c.mu.Unlock()
			// Not logged here: the Sender's completion callback (the
			// delivery scheduler) logs lost requests with what it does
			// about them.
			c.finish(expired, lost)
			clear(expired)
		}
	}
}
