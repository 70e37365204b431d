package opensips

import (
	"errors"
	"strconv"
	"syscall"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Send encodes notice n as one t_uac_dlg request and queues it for the
// next Flush: the caller (a scheduler, pkg/delivery) decides when and how
// much to send. It returns an error, and done is never called, when the
// client is not open (ErrClosed) or when n cannot be encoded safely
// (ErrUnsafeHeader); the error carries the delivery.Fault it amounts to
// (delivery.Sender). Otherwise done is called exactly once with tag and
// the outcome, OpenSIPS's reply mapped onto delivery.Outcome: from the
// reader when OpenSIPS answers, from the reaper when no reply came within
// Timeout (FaultLost: the request or its reply was lost), from Close
// (FaultAborted), or as FaultNotSent when Flush could not write it or the
// kernel reports that nothing listens on OpenSIPS's MI socket. done runs
// on the client's goroutines, possibly before Flush returns: keep it
// cheap, non-blocking, and do not hold a lock Flush's caller holds.
//
// Send does not allocate once its pools are warm: done is expected to be
// one long-lived func value, and tag identifies the notice to it.
func (c *MIClient) Send(n *imc.Notice, tag uint64, done delivery.Completion) error {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if !c.opened || c.closed {
		return &sendError{err: ErrClosed, fault: delivery.FaultAborted}
	}
	id := c.nextID.Add(1)
	bp := c.bufs.Get().(*[]byte)
	route, direct := Route{NextHop: c.NextHop}, false
	if c.Routes != nil {
		if r, ok := c.Routes.Route(n.To); ok {
			route, direct = r, true
		}
	}
	b, omitted, err := appendUAC((*bp)[:0], id, n, c.tagPrefix, id, true, route)
	*bp = b
	if err != nil {
		c.bufs.Put(bp)
		return err
	}
	if omitted {
		c.log.Warn("In-Reply-To left out: Call-ID has unsafe characters", logkey.CallID, strconv.Quote(truncate([]byte(n.InReplyTo), 64)))
	}
	p := c.sendPool.Get().(*pending)
	now := time.Now()
	*p = pending{id: id, sent: now, deadline: now.Add(c.Timeout), onSent: done, tag: tag, to: n.To, direct: direct}
	// Registered before the write: the reply may be read before the write
	// returns.
	c.register(p)
	c.queueMu.Lock()
	c.queued = append(c.queued, queuedRequest{id: id, buf: bp})
	c.queueMu.Unlock()
	return nil
}

// Flush writes the requests Send queued, in order: over UDP with one
// sendmmsg for up to a kernel batch of them. A request that cannot be
// written ends FaultNotSent (a closed port: every request in flight does,
// nothing listens).
func (c *MIClient) Flush() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.queueMu.Lock()
	c.writing, c.queued = c.queued, c.writing[:0]
	c.queueMu.Unlock()
	reqs := c.writing
	for len(reqs) > 0 {
		n, err := c.writeQueued(reqs)
		for _, r := range reqs[:n] {
			c.bufs.Put(r.buf)
		}
		reqs = reqs[n:]
		if err == nil {
			continue
		}
		// reqs[0] was not written; the ones after it are tried again,
		// unless nothing listens.
		c.bufs.Put(reqs[0].buf)
		c.sendFailed(reqs[0].id, err)
		reqs = reqs[1:]
		if errors.Is(err, syscall.ECONNREFUSED) {
			for _, r := range reqs {
				c.bufs.Put(r.buf)
			}
			c.portClosed(err)
			break
		}
	}
	clear(c.writing)
	c.writing = c.writing[:0]
}

// writeQueued writes a prefix of reqs and says how many were written; err
// is why the next one was not.
func (c *MIClient) writeQueued(reqs []queuedRequest) (int, error) {
	if c.udp == nil {
		for i, r := range reqs {
			if err := c.write(*r.buf); err != nil {
				return i, err
			}
		}
		return len(reqs), nil
	}
	c.msgs = c.msgs[:0]
	for _, r := range reqs {
		c.msgs = append(c.msgs, *r.buf)
	}
	n, err := c.udp.WriteBatch(c.msgs)
	clear(c.msgs)
	return n, err
}

// dropQueued forgets what is queued, at Close (the requests end aborted
// with the rest in flight).
func (c *MIClient) dropQueued() {
	c.queueMu.Lock()
	defer c.queueMu.Unlock()
	for _, r := range c.queued {
		c.bufs.Put(r.buf)
	}
	c.queued = c.queued[:0]
}

// InOrder reports whether requests to member keep their order on their
// way. Through the proxy, OpenSIPS's SIP workers take the looped-back
// MESSAGEs from one socket concurrently and may swap two (delivery.Sender),
// unless that socket has one worker (NextHopInOrder). Straight to the
// member's contact, OpenSIPS's one MI process writes them in the order it
// reads them. With contacts in use only those are in order: a member's
// MESSAGEs may change path between two, and the two paths may swap them.
func (c *MIClient) InOrder(member imc.URI) bool {
	if c.Routes != nil {
		_, ok := c.Routes.Route(member)
		return ok
	}
	return c.NextHopInOrder && c.NextHop != ""
}

// endSend reports the outcome of a Send request and recycles it. A MESSAGE
// sent straight to a contact that did not arrive makes the Router forget
// the contact; one OpenSIPS refused (a socket it no longer has, a contact
// it cannot parse) was not sent at all, and goes again, through the proxy.
func (c *MIClient) endSend(p *pending, o delivery.Outcome, more bool) {
	if p.direct && !o.Delivered() {
		c.Routes.Forget(p.to)
		if o.Fault == delivery.FaultRefused || o.Fault == delivery.FaultNoRoute {
			o.Fault = delivery.FaultNotSent
		}
	}
	done, tag := p.onSent, p.tag
	*p = pending{}
	c.sendPool.Put(p)
	done(tag, o, more)
}
