package opensips

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Subscriber defaults.
const (
	// DefaultRenew is short enough that an OpenSIPS restarted (and so
	// without the subscription, which it keeps in memory only) sends events
	// again within 5 s of answering its MI, and costs one MI call per
	// event and node every 4 s.
	DefaultRenew  = 4 * time.Second
	DefaultExpire = 120 * time.Second
	// DefaultSubscribeMethod is the 3.x name; 4.x also accepts it (and
	// "evi:subscribe").
	DefaultSubscribeMethod = "event_subscribe"
	firstRetry             = 500 * time.Millisecond
)

// Subscriber keeps imcd subscribed to its event in OpenSIPS. OpenSIPS keeps
// subscriptions in memory only, so one restart loses them: the Subscriber
// calls MI event_subscribe at Open and again every Renew (well before Expire),
// so that a restarted OpenSIPS is healed within Renew; while OpenSIPS cannot
// be reached or refuses, it retries with a backoff from 0.5 s doubling up to
// Renew. Close unsubscribes (expire 0). Setups that subscribe in OpenSIPS's
// startup_route simply do not run a Subscriber.
//
// Client must stay open until Close returns.
type Subscriber struct {
	// Client makes the MI calls to OpenSIPS (an *MIClient). Required.
	Client Caller
	// Event is the event name, DefaultEventName when "".
	Event string
	// Socket is where OpenSIPS sends the events, as event_subscribe wants
	// it: "tcp:127.0.0.1:9998" (event_stream), "udp:127.0.0.1:9999" or
	// "unix:/path" (event_datagram). Required.
	Socket string
	// Expire is the subscription lifetime asked for; DefaultExpire when 0.
	Expire time.Duration
	// Renew is the renewal period; DefaultRenew when 0.
	Renew time.Duration
	// Method is the MI command, DefaultSubscribeMethod when "".
	Method string
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger

	log       *slog.Logger
	kick      chan struct{}
	active    atomic.Bool
	everOK    atomic.Bool
	opened    bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open starts keeping the subscription, in the background: the first
// attempt is made at once. It fails only on a configuration error.
func (s *Subscriber) Open(ctx context.Context) error {
	if s.Client == nil {
		return errors.New("opensips: Subscriber has no Client")
	}
	if s.Socket == "" {
		return errors.New("opensips: Subscriber has no Socket")
	}
	if s.Event == "" {
		s.Event = DefaultEventName
	}
	if s.Renew <= 0 {
		s.Renew = DefaultRenew
	}
	if s.Expire <= 0 {
		s.Expire = DefaultExpire
	}
	if s.Method == "" {
		s.Method = DefaultSubscribeMethod
	}
	s.log = logging.Child(s.Logger, logkey.SystemSubscriber).With(logkey.Event, s.Event, logkey.Socket, s.Socket)
	if s.Expire <= s.Renew {
		s.log.Warn("expire is not longer than renew: the subscription may lapse between renewals",
			logkey.Expire, s.Expire.String(), logkey.Renew, s.Renew.String())
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.kick = make(chan struct{}, 1)
	s.opened = true
	s.wg.Add(1)
	go s.run(runCtx)
	return nil
}

// Caller makes synchronous MI calls to OpenSIPS; MIClient is one.
type Caller interface {
	// Call sends method with params (encoded JSON, nil for none) and
	// returns the raw result or OpenSIPS's error.
	Call(ctx context.Context, method string, params []byte) ([]byte, error)
}

var _ Caller = (*MIClient)(nil)

// Kick makes the Subscriber subscribe again now, and retry quickly while
// that fails: OpenSIPS probably restarted (its event_stream connection
// closed), losing the subscription. It never blocks.
func (s *Subscriber) Kick() {
	if s.kick == nil {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Active reports whether the last attempt to subscribe succeeded (for
// /readyz).
func (s *Subscriber) Active() bool { return s.active.Load() }

// Close stops renewing and, if a subscription was ever made, unsubscribes
// (expire 0), waiting at most DefaultCallTimeout and a second. Safe to call
// more than once.
func (s *Subscriber) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCallTimeout+time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close within the caller's deadline (the daemon's one shutdown
// budget).
func (s *Subscriber) Shutdown(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		if !s.opened {
			return
		}
		s.cancel()
		s.wg.Wait()
		s.active.Store(false)
		if !s.everOK.Load() {
			return
		}
		if err = s.subscribe(ctx, 0); err != nil {
			s.log.Warn("unsubscribe failed", logkey.Err, err)
			return
		}
		s.log.Info("unsubscribed")
	})
	return err
}

func (s *Subscriber) run(ctx context.Context) {
	defer s.wg.Done()
	expire := int64((s.Expire + time.Second - 1) / time.Second)
	backoff := firstRetry
	lastErr := ""
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
			backoff = firstRetry
		}
		err := s.subscribe(ctx, expire)
		if err == nil || ctx.Err() != nil {
			// Subscribed, or a request cut short by Close that may have
			// reached OpenSIPS: either way Close unsubscribes.
			s.everOK.Store(true)
		}
		if ctx.Err() != nil {
			return
		}
		wait := s.Renew
		if err == nil {
			if !s.active.Swap(true) {
				s.log.Info("subscribed", logkey.Expire, expire, logkey.Renew, s.Renew.String())
			} else {
				s.log.Debug("subscription renewed")
			}
			backoff, lastErr = firstRetry, ""
		} else {
			wasActive := s.active.Swap(false)
			if msg := err.Error(); wasActive || msg != lastErr {
				s.logFailure(err)
				lastErr = msg
			} else {
				s.log.Debug("subscribe failed again", logkey.Err, err)
			}
			wait = backoff
			backoff = min(2*backoff, s.Renew)
		}
		t.Reset(wait)
	}
}

// logFailure logs a failed subscribe, with OpenSIPS's own message when it
// refused the request.
func (s *Subscriber) logFailure(err error) {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		s.log.Error("OpenSIPS refused the event subscription", logkey.Code, je.Code, logkey.Message, je.Message, logkey.Data, je.Data)
		return
	}
	s.log.Warn("cannot subscribe to OpenSIPS events; retrying", logkey.Err, err)
}

// subscribe calls event_subscribe {"event":E,"socket":S,"expire":N}.
func (s *Subscriber) subscribe(ctx context.Context, expire int64) error {
	b := make([]byte, 0, 64+len(s.Event)+len(s.Socket))
	b = append(b, `{"event":`...)
	b = jsonrpc.AppendString(b, s.Event)
	b = append(b, `,"socket":`...)
	b = jsonrpc.AppendString(b, s.Socket)
	b = append(b, `,"expire":`...)
	b = strconv.AppendInt(b, expire, 10)
	b = append(b, '}')
	res, err := s.Client.Call(ctx, s.Method, b)
	if err != nil {
		return err
	}
	if string(res) != `"OK"` {
		return fmt.Errorf("%w: %s answered %s", ErrBadReply, s.Method, truncate(res, 100))
	}
	return nil
}
