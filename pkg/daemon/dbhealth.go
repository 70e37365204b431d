package daemon

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/store"
)

// errDBDown answers what needs the database while it is known down.
var errDBDown = fmt.Errorf("%w: the database is not answering", ErrNotSaved)

// dbPingEvery is how often a database known down is asked whether it is
// back.
const dbPingEvery = 500 * time.Millisecond

// dbHealth is what the daemon knows of the database between commits: once
// a commit fails because the database did not answer, commands are
// answered "try again later" at once, without each waiting for its own
// timeout, until a ping succeeds. Chat never asks it: chat does not touch
// the database.
type dbHealth struct {
	st     store.Store
	d      *Daemon
	down   atomic.Bool
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func newDBHealth(d *Daemon, st store.Store) *dbHealth {
	ctx, cancel := context.WithCancel(context.Background())
	h := &dbHealth{st: st, d: d, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go h.run(ctx)
	return h
}

// up reports whether commands may go to the database.
func (h *dbHealth) up() bool { return h == nil || !h.down.Load() }

// failed records that a commit found the database not answering.
func (h *dbHealth) failed(err error) {
	if h.down.CompareAndSwap(false, true) {
		h.d.logger.Error("the database is not answering: commands are answered 'try again later' until it is back; chat goes on", logkey.Err, err)
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// answered records that the database answered a ping (/readyz asks too).
func (h *dbHealth) answered() {
	if h != nil && h.down.CompareAndSwap(true, false) {
		h.d.notice("the database answers again: commands are taken again")
	}
}

// run pings a database known down until it answers.
func (h *dbHealth) run(ctx context.Context) {
	defer close(h.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		for h.down.Load() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(dbPingEvery):
			}
			if err := h.st.Ping(ctx); err == nil {
				h.answered()
			}
		}
	}
}

// close stops the pinger.
func (h *dbHealth) close() {
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
}
