package mi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Defaults of the HTTP transport.
const (
	// DefaultHTTPAddr is where the HTTP transport listens when Addr is empty:
	// loopback, next to OpenSIPS's usual mi_http port 8888.
	DefaultHTTPAddr = "127.0.0.1:8889"
	// DefaultHTTPPath is the URL path of the MI, as mi_http's default root.
	DefaultHTTPPath = "/mi"
)

// HTTP server limits.
const (
	httpHeaderTimeout = 10 * time.Second
	httpIdleTimeout   = time.Minute
	httpMaxHeader     = 16 << 10
	// shutdownGrace is how long Close lets requests in progress finish.
	shutdownGrace = 5 * time.Second
)

// badURLBody is mi_http's answer to a request for another path.
const badURLBody = "<html><body>Unable to parse URL!</body></html>"

// HTTPTransport serves the MI like OpenSIPS's mi_http: a POST of a JSON-RPC
// request to Path is answered 200 with the JSON-RPC reply (errors included)
// as application/json; another path gets mi_http's 400 page.
//
// Deliberate differences from mi_http: GET and other methods get 405 with an
// empty body and Content-Length 0 (mi_http sends a chunked header and hangs);
// the body is processed whatever its Content-Type (mi_http never answers a
// text/plain one); a body over MaxRequest gets -32600; a notification gets
// 204 No Content.
type HTTPTransport struct {
	// Server answers the requests.
	Server *Server
	// Addr is host:port (DefaultHTTPAddr when empty).
	Addr string
	// Path is the URL path of the MI (DefaultHTTPPath when empty).
	Path string

	ln   net.Listener
	life lifecycle
}

// Listen opens the TCP listener.
func (t *HTTPTransport) Listen() error {
	if t.ln != nil {
		return ErrListening
	}
	addr := t.Addr
	if addr == "" {
		addr = DefaultHTTPAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	t.ln = ln
	return nil
}

// LocalAddr returns the address Listen bound, or nil before Listen.
func (t *HTTPTransport) LocalAddr() net.Addr {
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

// Open listens (unless Listen was called) and serves in a goroutine until
// Close or until ctx ends.
func (t *HTTPTransport) Open(ctx context.Context) error {
	if t.ln == nil {
		if err := t.Listen(); err != nil {
			return err
		}
	}
	ln := t.ln
	return t.life.start(ctx, func(ctx context.Context) { _ = t.Serve(ctx, ln) })
}

// Close stops accepting, lets requests in progress finish for a grace
// period, and closes the listener. It is idempotent.
func (t *HTTPTransport) Close() error {
	return t.life.stop(func() error {
		if t.ln == nil {
			return nil
		}
		return closeQuietly(t.ln)
	})
}

// Serve answers HTTP requests on ln until ctx ends, then shuts down within
// shutdownGrace. net/http runs one goroutine per connection.
func (t *HTTPTransport) Serve(ctx context.Context, ln net.Listener) error {
	log := t.Server.logger().With(keyTransport, "http", keyAddr, ln.Addr().String())
	srv := &http.Server{
		Handler:           t,
		ReadHeaderTimeout: httpHeaderTimeout,
		ReadTimeout:       httpHeaderTimeout + t.Server.timeout(),
		WriteTimeout:      httpHeaderTimeout + t.Server.timeout(),
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// Requests in progress finish when Close cancels ctx.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	})
	err := srv.Serve(ln)
	if !stop() {
		<-done
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeHTTP answers one MI request; the daemon may also mount the transport
// on another server.
func (t *HTTPTransport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := t.Path
	if path == "" {
		path = DefaultHTTPPath
	}
	if r.URL.Path != path {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(badURLBody)))
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, badURLBody)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	limit := t.Server.maxRequest()
	// One byte over the limit is read so that Handle sees the request is
	// oversize; the rest is not read, so the connection is not reused.
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if len(body) > limit {
		w.Header().Set("Connection", "close")
	}
	reply := t.Server.Handle(r.Context(), body)
	if reply == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
	_, _ = w.Write(reply)
}
