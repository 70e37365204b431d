package mi

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// Defaults of the HTTP transport.
const (
	// DefaultHTTPAddr is where the HTTP transport listens when Addr is empty:
	// loopback, next to OpenSIPS's usual mi_http port 8888.
	DefaultHTTPAddr = "127.0.0.1:8889"
	// DefaultHTTPPath is the URL path of the MI, as mi_http's default root.
	DefaultHTTPPath = "/mi"
)

// badURLBody is mi_http's answer to a request for another path.
const badURLBody = "<html><body>Unable to parse URL!</body></html>"

// HTTPTransport serves the MI like OpenSIPS's mi_http: a POST of a JSON-RPC
// request to Path is answered 200 with the JSON-RPC reply (errors included)
// as application/json; another path gets mi_http's 400 page.
//
// Web pages may not use it (see checkBrowser): a request whose Host names
// neither the address it came in on nor one of Hosts gets 421 (a page on a
// rebinding domain), one with an Origin header not in Origins 403 (any
// cross-site page), one whose Content-Type is not application/json 415 (a
// browser sends a cross-site "simple" POST without asking first only with
// text/plain or a form type). Each refusal has a JSON-RPC error body
// saying why and which key would allow it. opensips-cli, python-opensips
// and curl send a numeric Host, no Origin and application/json.
//
// Deliberate differences from mi_http: GET and other methods get 405 with an
// empty body and Content-Length 0 (mi_http sends a chunked header and hangs);
// a wrong Content-Type gets 415 (mi_http never answers a text/plain one); a
// body over MaxRequest gets -32600; a notification gets 204 No Content.
type HTTPTransport struct {
	// Server answers the requests.
	Server *Server
	// Addr is host:port (DefaultHTTPAddr when empty; port 0 picks a free
	// one, see LocalAddr).
	Addr string
	// Path is the URL path of the MI (DefaultHTTPPath when empty).
	Path string
	// Hosts are the host names a request's Host header may give besides
	// the IP address the request came in on, and "localhost" when that is
	// a loopback address (mi_http_hosts): a name under which imcd is
	// reached through a proxy, say. The port is not compared.
	Hosts []string
	// Origins are the Origin header values allowed
	// (mi_http_origins), such as "https://admin.example.com": a web
	// application there may call the MI, and gets CORS headers. Any other
	// Origin is refused; a request without one is not concerned.
	Origins []string

	http sockets.HTTPServer
}

// Listen opens the TCP listener; ctx bounds only the binding.
func (t *HTTPTransport) Listen(ctx context.Context) error {
	t.http.Addr = t.Addr
	if t.http.Addr == "" {
		t.http.Addr = DefaultHTTPAddr
	}
	t.http.Handler = t
	t.http.RequestTimeout = t.Server.timeout()
	t.http.Logger = t.Server.logger().With(logkey.Transport, "http")
	return t.http.Listen(ctx)
}

// LocalAddr returns the address Listen bound, or nil before Listen.
func (t *HTTPTransport) LocalAddr() net.Addr { return t.http.LocalAddr() }

// Open listens (unless Listen was called) and serves in a goroutine until
// Close; ctx bounds only the opening.
func (t *HTTPTransport) Open(ctx context.Context) error {
	if t.http.LocalAddr() == nil {
		if err := t.Listen(ctx); err != nil {
			return err
		}
	}
	return t.http.Open(ctx)
}

// Serve answers requests on the listener Listen opened until Close, then
// returns nil.
func (t *HTTPTransport) Serve() error { return t.http.Serve() }

// Close stops accepting, lets requests in progress finish for a grace
// period, and closes the listener. It is idempotent.
func (t *HTTPTransport) Close() error { return t.http.Close() }

// Shutdown is Close with the caller's deadline for requests in progress.
func (t *HTTPTransport) Shutdown(ctx context.Context) error { return t.http.Shutdown(ctx) }

// ServeHTTP answers one MI request; the daemon may also mount the transport
// on another server.
func (t *HTTPTransport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := t.Path
	if path == "" {
		path = DefaultHTTPPath
	}
	if refusal := t.checkBrowser(w, r); refusal != nil {
		refusal.write(w)
		return
	}
	if r.URL.Path != path {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(badURLBody)))
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, badURLBody)
		return
	}
	if r.Method == http.MethodOptions && r.Header.Get("Origin") != "" {
		// A preflight from an allowed Origin (checkBrowser let it by).
		w.Header().Set("Access-Control-Allow-Methods", http.MethodPost)
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		httpRefusal{http.StatusUnsupportedMediaType,
			"Content-Type must be application/json, not " + quoteHeader(r.Header.Get("Content-Type"))}.write(w)
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
