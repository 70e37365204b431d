package sockets

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// HTTP server defaults.
const (
	// DefaultShutdownGrace is how long Close lets requests in progress
	// finish before cutting their connections.
	DefaultShutdownGrace = 5 * time.Second
	httpHeaderTimeout    = 10 * time.Second
	httpIdleTimeout      = time.Minute
	httpMaxHeader        = 16 << 10
)

// HTTPServer is net/http's server in the lifecycle's idiom: imcd's MI over
// HTTP and the metrics endpoint are both one. Set the fields, then Open (or
// Listen and Serve), then Close.
type HTTPServer struct {
	// Addr is host:port; port 0 picks a free one (see LocalAddr).
	Addr string
	// Handler answers the requests.
	Handler http.Handler
	// RequestTimeout bounds reading a request body and writing its reply,
	// on top of the header timeout; 0 means the header timeout alone.
	RequestTimeout time.Duration
	// ShutdownGrace is how long Close waits for requests in progress;
	// DefaultShutdownGrace when 0.
	ShutdownGrace time.Duration
	// Logger receives net/http's own error lines at debug level, and why
	// serving stopped if it was not Close; nil discards them.
	Logger *slog.Logger

	ln   net.Listener
	srv  *http.Server
	life Lifecycle
}

// Listen opens the TCP listener; ctx bounds only the binding.
func (s *HTTPServer) Listen(ctx context.Context) error {
	return s.life.Listen(func() error { return s.bind(ctx) })
}

func (s *HTTPServer) bind(ctx context.Context) error {
	ln, err := Listen(ctx, Address{Network: TCP, Addr: s.Addr})
	if err != nil {
		return err
	}
	log := s.logger()
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: httpHeaderTimeout,
		ReadTimeout:       httpHeaderTimeout + s.RequestTimeout,
		WriteTimeout:      httpHeaderTimeout + s.RequestTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return nil
}

// LocalAddr returns the address Listen bound, or nil before Listen.
func (s *HTTPServer) LocalAddr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Open listens (unless Listen was called) and serves in a goroutine until
// Close; ctx bounds only the opening. Why serving stopped, if it was not
// Close, is logged.
func (s *HTTPServer) Open(ctx context.Context) error {
	return s.life.Open(ctx, s.Listen, s.Serve, func(err error) {
		s.logger().Error("HTTP server stopped", logkey.Addr, s.Addr, logkey.Err, err)
	})
}

func (s *HTTPServer) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Serve answers requests on the listener Listen opened until Close, then
// returns nil. net/http runs one goroutine per connection.
func (s *HTTPServer) Serve() error {
	return s.life.Serve(func() error {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !s.life.Closing() {
			return err
		}
		return nil
	})
}

// Close stops accepting, lets requests in progress finish for
// ShutdownGrace, then closes what is left. It is idempotent.
func (s *HTTPServer) Close() error {
	grace := s.ShutdownGrace
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close with the caller's deadline for the requests in
// progress (the daemon's one shutdown budget) instead of ShutdownGrace.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	return s.life.Close(func() error {
		if s.srv == nil {
			return nil
		}
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		return CloseQuietly(s.ln)
	})
}
