package rabbitmq

// Observer is told what happens to deliveries and connections, for metrics.
// Implementations must be cheap and safe for concurrent use: every queue's
// worker calls them.
type Observer interface {
	// Delivered counts one message taken from queue; redelivered is the
	// broker's flag (it was delivered before, to this or another consumer).
	Delivered(queue string, redelivered bool)
	// Settled counts what became of one delivery: one of the Outcome*
	// constants.
	Settled(queue, outcome string)
	// Retried counts one refusal of the Sink (busy): the delivery is offered
	// again after a backoff, holding the queue's later deliveries.
	Retried(queue string)
	// Connected reports the broker connection going up (true) or down.
	Connected(up bool)
	// Consuming reports a queue's consumer being registered (true) or gone.
	Consuming(queue string, up bool)
}

// Outcomes of a delivery, as reported to Observer.Settled.
const (
	// OutcomeAcked: applied and committed (done(nil)), acknowledged.
	OutcomeAcked = "acked"
	// OutcomeRejected: can never be applied (undecodable, or the Sink says
	// it is a bad event); rejected without requeue, so dead-lettered when the
	// queue has a dead-letter exchange, dropped otherwise.
	OutcomeRejected = "rejected"
	// OutcomeReturned: given back to the queue unacknowledged when the
	// consumer's channel closed (a rewind after a failed commit, a shutdown,
	// a lost connection); the broker delivers it again, in order.
	OutcomeReturned = "returned"
	// OutcomeRerouted: re-published under another routing key (confirmed by
	// the broker), then acknowledged.
	OutcomeRerouted = "rerouted"
)

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

// Delivered does nothing.
func (NopObserver) Delivered(string, bool) {}

// Settled does nothing.
func (NopObserver) Settled(string, string) {}

// Retried does nothing.
func (NopObserver) Retried(string) {}

// Connected does nothing.
func (NopObserver) Connected(bool) {}

// Consuming does nothing.
func (NopObserver) Consuming(string, bool) {}

var _ Observer = NopObserver{}
