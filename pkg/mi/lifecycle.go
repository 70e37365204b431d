package mi

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
)

// lifecycle is what every transport owns between Open and Close: the cancel
// of its serving context and the WaitGroup of its goroutine.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// start runs serve in a goroutine with a context that stop cancels. It
// runs once: a second start, or one after stop, is refused.
func (l *lifecycle) start(ctx context.Context, serve func(context.Context)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrClosed
	case l.started:
		return ErrListening
	}
	l.started = true
	ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		serve(ctx)
	}()
	return nil
}

// stop cancels the serving context (Serve closes its socket when it ends),
// waits for the goroutine, then runs cleanup (close what Listen opened if
// nothing served it, remove files). Only the first call does anything; it is
// safe before start.
func (l *lifecycle) stop(cleanup func() error) error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		cancel := l.cancel
		l.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		l.wg.Wait()
		if cleanup != nil {
			err = cleanup()
		}
	})
	return err
}

// closeQuietly closes c, ignoring that it was closed already.
func closeQuietly(c io.Closer) error {
	if c == nil {
		return nil
	}
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}
