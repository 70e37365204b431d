package rooms

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// The senders' budgets (docs/security.md): the rate and fan-out limits
// that Submit checks as a pre-filter, and the fan-out budget held to on
// the shard, where what a request costs is known.

// spendFanout holds a handled request to its sender's fan-out budget
// (fanout_limit) on the shard goroutine, before anything is sent: the
// intake's check only filters, since every request a sender queued before
// the budget ran out passed it. A request with nothing to save takes its
// cost now, checked and charged in one step; one whose changes go to the
// database is checked only, and charged when they land (chargeFanout).
// Either way a burst sends at most fanout_burst plus one request's
// fan-out. Over the budget, the request is dropped (the sender told once)
// and answered; false then. It allocates nothing.
func (s *shard) spendFanout(t *task, res *imc.Result, now time.Time) bool {
	var key [imc.KeyBufLen]byte
	k := t.in.From.AppendKey(key[:0])
	var dec flood.Decision
	if len(res.Changes) == 0 && res.Topic == nil && res.History == nil {
		dec = s.limiter.Spend(k, len(res.Notices), now)
	} else {
		dec = s.limiter.Check(k, now)
	}
	if dec == flood.Allowed {
		return true
	}
	s.rateLimited(&t.in, dec)
	t.done(nil)
	return false
}

// chargeFanout takes the MESSAGEs a sender's command made imcd send from
// the sender's fan-out budget (fanout_limit), once its changes landed. It
// runs on the shard goroutine after the notices were handed over, and
// allocates nothing.
func (e *env) chargeFanout(in *imc.Input, deliveries int, now time.Time) {
	if in == nil || deliveries == 0 {
		return
	}
	var key [imc.KeyBufLen]byte
	e.limiter.Charge(in.From.AppendKey(key[:0]), deliveries, now)
}

// rateLimited drops a request over the sender's rate or fan-out budget:
// the first refusal of an episode tells the sender (and is logged), every
// one is counted.
func (e *env) rateLimited(in *imc.Input, dec flood.Decision) {
	if dec == flood.FirstRefusal {
		e.log.Warn("sender over the rate limit: told once, dropping until it slows down", logkey.From, in.From.String(), logkey.CallID, in.Req.CallID)
		n := []imc.Notice{{From: in.RURI, To: in.From, Body: imc.TxtRateLimited, ContentType: "text/plain", InReplyTo: in.ReplyID()}}
		if err := e.submit(delivery.Batch{Notices: n, Urgent: true, Done: e.delivered}); err != nil {
			e.sendFailed(err)
		}
	}
	e.metrics.Command(metrics.CommandRateLimited, imc.Refused.String())
}
