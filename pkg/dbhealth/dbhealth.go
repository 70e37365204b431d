// Package dbhealth is what imcd knows of its database between commits:
// once a commit fails because the database did not answer, commands are
// answered "try again later" at once, without each waiting for its own
// timeout, until a ping succeeds. Chat never asks it: chat does not touch
// the database. One goroutine pings a database known down.
package dbhealth

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// PingEvery is how often a database known down is asked whether it is
// back.
const PingEvery = 500 * time.Millisecond

// Pinger is the database: store.Store is one.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Monitor tracks whether the database is known down. New, then Open,
// then Close; Up, Failed and Answered are safe for concurrent use, and
// Up costs one atomic load.
type Monitor struct {
	db     Pinger
	log    *slog.Logger
	down   atomic.Bool
	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a monitor of db; Open starts its pinger.
func New(db Pinger, logger *slog.Logger) *Monitor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Monitor{db: db, log: logger, wake: make(chan struct{}, 1), cancel: func() {}}
}

// Open starts the goroutine that pings a database known down; ctx bounds
// only the opening.
func (m *Monitor) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.run(ctx) }()
	return nil
}

// Close stops the pinger.
func (m *Monitor) Close() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

// Up reports whether commands may go to the database.
func (m *Monitor) Up() bool { return !m.down.Load() }

// Failed records that a commit found the database not answering.
func (m *Monitor) Failed(err error) {
	if m.down.CompareAndSwap(false, true) {
		m.log.Error("the database is not answering: commands are answered 'try again later' until it is back; chat goes on", logkey.Err, err)
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Answered records that the database answered a ping (/readyz pings it
// too).
func (m *Monitor) Answered() {
	if m.down.CompareAndSwap(true, false) {
		logging.Notice(m.log, "the database answers again: commands are taken again")
	}
}

// run pings a database known down until it answers.
func (m *Monitor) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		for m.down.Load() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(PingEvery):
			}
			if err := m.db.Ping(ctx); err == nil {
				m.Answered()
			}
		}
	}
}
