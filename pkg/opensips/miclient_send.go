package opensips

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Send writes notice n as one t_uac_dlg request now: the caller (a
// scheduler, pkg/delivery) decides when and how much to send. It returns an
// error, and done is never called, when the client is not open (ErrClosed),
// when n cannot be encoded safely (ErrUnsafeHeader), or when the datagram
// could not be written (ErrUnreachable); the error carries the
// delivery.Fault it amounts to (delivery.Sender). Otherwise done is called
// exactly once with tag and the outcome, OpenSIPS's reply mapped onto
// delivery.Outcome: from the reader when OpenSIPS answers, from the reaper
// when no reply came within Timeout (FaultLost: the request or its reply
// was lost), from Close (FaultAborted), or as FaultNotSent when the kernel
// reports that nothing listens on OpenSIPS's MI socket. done runs on the client's
// goroutines, possibly before Send returns: keep it cheap, non-blocking,
// and do not hold a lock Send's caller holds.
//
// Send does not allocate once its pools are warm: done is expected to be
// one long-lived func value, and tag identifies the notice to it.
func (c *MIClient) Send(n *imc.Notice, tag uint64, done func(tag uint64, o delivery.Outcome)) error {
	c.stateMu.RLock()
	if !c.opened || c.closed {
		c.stateMu.RUnlock()
		return &sendError{err: ErrClosed, fault: delivery.FaultAborted}
	}
	id := c.nextID.Add(1)
	bp := c.bufs.Get().(*[]byte)
	b, omitted, err := appendUAC((*bp)[:0], id, n, c.tagPrefix, id, true, c.NextHop)
	*bp = b
	if err != nil {
		c.bufs.Put(bp)
		c.stateMu.RUnlock()
		return err
	}
	if omitted {
		c.log.Warn("In-Reply-To left out: Call-ID has unsafe characters", logkey.CallID, strconv.Quote(truncate([]byte(n.InReplyTo), 64)))
	}
	p := c.sendPool.Get().(*pending)
	now := time.Now()
	*p = pending{id: id, sent: now, deadline: now.Add(c.Timeout), onSent: done, tag: tag}
	// Registered before the write: the reply may be read before Write
	// returns.
	c.register(p)
	c.stateMu.RUnlock()

	err = c.write(*bp)
	c.bufs.Put(bp)
	if err == nil {
		return nil
	}
	if c.take(id) == nil {
		// Someone else ended it first (the reader saw the port closed):
		// done has been or is being called.
		return nil
	}
	c.sendPool.Put(p)
	c.noteUnreachable(err)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// Nothing listens: whatever is in flight will not be answered.
		c.portClosed(err)
	}
	return &sendError{err: fmt.Errorf("%w: %w", ErrUnreachable, err), fault: delivery.FaultNotSent}
}

// endSend reports the outcome of a Send request and recycles it.
func (c *MIClient) endSend(p *pending, o delivery.Outcome) {
	done, tag := p.onSent, p.tag
	*p = pending{}
	c.sendPool.Put(p)
	done(tag, o)
}
