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
		c.complete(p, notSentOutcome(err))
	}
}

// portClosed ends every request in flight as unreachable: the kernel got an
// ICMP port unreachable for OpenSIPS's MI port, so OpenSIPS is not running
// (or restarted and lost them).
func (c *MIClient) portClosed(err error) {
	c.noteUnreachable(err)
	o := notSentOutcome(err)
	for _, p := range c.takeAll() {
		c.complete(p, o)
	}
}

// readLoop matches reply datagrams to requests by id.
func (c *MIClient) readLoop(ctx context.Context) {
	defer c.wg.Done()
	buf := make([]byte, maxReply)
	var p fastjson.Parser
	uc, _ := c.conn.(*net.UnixConn)
	for {
		var (
			n   int
			err error
		)
		if uc != nil {
			var from *net.UnixAddr
			n, from, err = uc.ReadFromUnix(buf)
			if err == nil && !c.fromOpenSIPS(from) {
				continue
			}
		} else {
			n, err = c.conn.Read(buf)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				c.portClosed(err)
				continue
			}
			c.log.Warn("MI read failed", logkey.Err, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		c.handleReply(&p, buf[:n])
	}
}

// handleReply completes the request a reply datagram answers. A panic is
// recovered and logged: one bad datagram never stops the reader.
func (c *MIClient) handleReply(p *fastjson.Parser, b []byte) {
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
	if o.Err != nil && errors.Is(o.Err, ErrBadReply) {
		c.badReply(o.Reason, b)
	}
	c.complete(pd, o)
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
				}
			}
			c.mu.Unlock()
			// Not logged here: the Sender's completion callback (the
			// delivery scheduler) logs lost requests with what it does
			// about them.
			for _, p := range expired {
				c.complete(p, lost)
			}
			clear(expired)
		}
	}
}
