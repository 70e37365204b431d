package mi

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// What keeps web pages away from the HTTP MI. A page in a browser on the
// host can send a POST to 127.0.0.1 without any CORS preflight when its
// Content-Type is text/plain or a form's; a page on a domain that rebinds
// its DNS name to 127.0.0.1 even reads the answers, as same-origin. The
// three checks, each enough against one of those: the Host header (a
// rebinding page can only send its own name), the Origin header (every
// browser sends it with a cross-site POST), the Content-Type (JSON needs a
// preflight, which imcd does not grant unless the Origin is allowed).

// httpRefusal is a request refused before it reaches the Server: an HTTP
// status and a JSON-RPC error saying why.
type httpRefusal struct {
	status int
	why    string
}

func (f httpRefusal) write(w http.ResponseWriter) {
	body := jsonrpc.AppendError(nil, nullID(), &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
		Message: http.StatusText(f.status), Data: f.why})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(f.status)
	_, _ = w.Write(body)
}

// checkBrowser refuses a request whose Host or Origin says a web page sent
// it, and adds the CORS headers for an allowed Origin.
func (t *HTTPTransport) checkBrowser(w http.ResponseWriter, r *http.Request) *httpRefusal {
	if !t.hostAllowed(r) {
		return &httpRefusal{http.StatusMisdirectedRequest, "Host " + quoteHeader(r.Host) +
			" is not the address of imcd's MI: add the name to mi_http_hosts if it is one of this host's"}
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return nil
	}
	if len(origins) == 1 && t.originAllowed(origins[0]) {
		w.Header().Set("Access-Control-Allow-Origin", origins[0])
		w.Header().Add("Vary", "Origin")
		return nil
	}
	return &httpRefusal{http.StatusForbidden, "Origin " + quoteHeader(strings.Join(origins, ", ")) +
		" may not use imcd's MI: web pages are refused unless mi_http_origins lists them"}
}

// hostAllowed reports whether the Host header names the address the
// request came in on (any port), localhost on a loopback address, or one
// of Hosts. A request without Host (HTTP/1.0) is let through: no browser
// sends one.
func (t *HTTPTransport) hostAllowed(r *http.Request) bool {
	if r.Host == "" {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "."), "["), "]")
	for _, h := range t.Hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	local := localIP(r)
	if ip, err := netip.ParseAddr(host); err == nil {
		return local.IsValid() && ip.Unmap() == local
	}
	return strings.EqualFold(host, "localhost") && local.IsLoopback()
}

// localIP is the address the request's connection came in on.
func localIP(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

func (t *HTTPTransport) originAllowed(origin string) bool {
	for _, o := range t.Origins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// isJSON reports whether a Content-Type is application/json (parameters
// such as charset allowed).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// quoteHeader quotes a header value for an error text, clipped.
func quoteHeader(v string) string {
	if v == "" {
		return "(none)"
	}
	if len(v) > 100 {
		v = v[:100] + "..."
	}
	return strconv.Quote(v)
}
