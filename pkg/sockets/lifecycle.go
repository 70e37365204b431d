package sockets

import (
	"context"
	"errors"
	"sync"
)

// Errors of the lifecycle.
var (
	// ErrListening: Listen (or Open) was called on a server that is
	// listening already.
	ErrListening = errors.New("sockets: server already listening")
	// ErrClosed: the server was closed; servers are not reused.
	ErrClosed = errors.New("sockets: server closed")
	// ErrNotListening: Serve was called before Listen.
	ErrNotListening = errors.New("sockets: server not listening")
)

// Lifecycle is the state every imcd socket server owns, so that all of them
// open, serve and close the same way:
//
//	Listen(ctx)  binds the socket; ctx bounds only the binding
//	Addr()       the address bound (port 0 resolved)
//	Serve()      serves until Close, then returns nil
//	Open(ctx)    Listen, then Serve in a goroutine
//	Close()      idempotent: stops serving, waits for every goroutine
//
// A server embeds a Lifecycle; its Listen hands what binds to Listen, its
// Serve hands its serve loop to Serve, it calls Go for each goroutine it
// starts per connection, and Close with a function that closes its sockets.
type Lifecycle struct {
	mu        sync.Mutex
	listening bool
	opened    bool
	closed    bool
	wg        sync.WaitGroup
	once      sync.Once
	closeErr  error
}

// Listen marks the server listening and runs bind, which opens its
// sockets: ErrListening when it listens already, ErrClosed after Close.
// When bind fails the server is not listening, and Listen may be tried
// again.
func (l *Lifecycle) Listen(bind func() error) error {
	if err := l.markListening(); err != nil {
		return err
	}
	if err := bind(); err != nil {
		l.mu.Lock()
		l.listening = false
		l.mu.Unlock()
		return err
	}
	return nil
}

func (l *Lifecycle) markListening() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrClosed
	case l.listening:
		return ErrListening
	}
	l.listening = true
	return nil
}

// isListening reports whether Listen succeeded (and Close has not run).
func (l *Lifecycle) isListening() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.listening && !l.closed
}

// Serve runs loop, the server's serve loop, so that Close waits for it to
// return: ErrNotListening before Listen, ErrClosed after Close.
func (l *Lifecycle) Serve(loop func() error) error {
	if err := l.addServing(); err != nil {
		return err
	}
	defer l.wg.Done()
	return loop()
}

func (l *Lifecycle) addServing() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrClosed
	case !l.listening:
		return ErrNotListening
	}
	l.wg.Add(1)
	return nil
}

// Go runs fn in a goroutine that Close waits for; it returns false (and
// does not run fn) once Close has begun.
func (l *Lifecycle) Go(fn func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn()
	}()
	return true
}

// Closing reports whether Close has begun: a serve loop that sees its
// socket fail checks it to tell a shutdown from a fault.
func (l *Lifecycle) Closing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Open is the body of every server's Open: Listen unless the server listens
// already, then serve in a goroutine. A Serve error is handed to failed
// (the server logs it); a Serve that returns because of Close is not one.
func (l *Lifecycle) Open(ctx context.Context, listen func(context.Context) error, serve func() error, failed func(error)) error {
	if !l.isListening() {
		if err := listen(ctx); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrClosed
	case l.opened:
		return ErrListening
	}
	l.opened = true
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, ErrClosed) && failed != nil {
			failed(err)
		}
	}()
	return nil
}

// Close runs stop once (it must make every serve loop and connection
// goroutine return, normally by closing the sockets), then waits for them.
// Later calls return the first call's error at once.
func (l *Lifecycle) Close(stop func() error) error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		if stop != nil {
			l.closeErr = stop()
		}
		l.wg.Wait()
	})
	return l.closeErr
}
