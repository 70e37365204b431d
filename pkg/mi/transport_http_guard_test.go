package mi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// post is a raw POST of an imc:destroy_room request with the given Host
// and extra header lines.
func post(host string, headers ...string) []byte {
	const body = `{"jsonrpc":"2.0","method":"imc:destroy_room","params":{"room":"sip:native-1@127.0.0.1"},"id":1}`
	h := "POST /mi HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n"
	for _, l := range headers {
		h += l + "\r\n"
	}
	return []byte(h + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// TestHTTPBrowserGuard: what a web page can send is refused before any
// command runs, with a status and a JSON-RPC error saying which key would
// allow it; what opensips-cli and curl send goes through.
func TestHTTPBrowserGuard(t *testing.T) {
	admin, ops := recordingAdmin(nil)
	tr := &HTTPTransport{Server: newServer(t, state(t, stateInitial), admin), Addr: "127.0.0.1:0",
		Hosts: []string{"imcd.internal"}, Origins: []string{"https://admin.example"}}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	ran := 0
	f := func(raw []byte, status int, data string) {
		t.Helper()
		resp, body := rawHTTP(t, tr.LocalAddr(), raw)
		if resp.StatusCode != status {
			t.Errorf("%q: %s, want %d (%s)", raw, resp.Status, status, body)
		}
		if status == http.StatusOK {
			ran++
		} else if !strings.Contains(string(body), `"data":"`+data+`"}`) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%q: body %s, want data %q", raw, body, data)
		}
		if got := len(ops()); got != ran {
			t.Fatalf("%q: %d commands ran, want %d", raw, got, ran)
		}
	}
	const json = "Content-Type: application/json"
	// The cross-site "simple" request of the issue.
	f(post("127.0.0.1:8889", "Content-Type: text/plain", "Origin: http://evil.example"), http.StatusForbidden,
		`Origin \"http://evil.example\" may not use imcd's MI: web pages are refused unless mi_http_origins lists them`)
	f(post("127.0.0.1:8889", json, "Origin: http://evil.example"), http.StatusForbidden,
		`Origin \"http://evil.example\" may not use imcd's MI: web pages are refused unless mi_http_origins lists them`)
	f(post("127.0.0.1:8889", json, "Origin: null"), http.StatusForbidden,
		`Origin \"null\" may not use imcd's MI: web pages are refused unless mi_http_origins lists them`)
	f(post("127.0.0.1:8889", "Content-Type: text/plain"), http.StatusUnsupportedMediaType,
		`Content-Type must be application/json, not \"text/plain\"`)
	f(post("127.0.0.1:8889", "Content-Type: application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType,
		`Content-Type must be application/json, not \"application/x-www-form-urlencoded\"`)
	f(post("127.0.0.1:8889"), http.StatusUnsupportedMediaType, `Content-Type must be application/json, not (none)`)
	// DNS rebinding: the page's own name, whatever the address.
	const rebound = ` is not the address of imcd's MI: add the name to mi_http_hosts if it is one of this host's`
	f(post("evil.example:8889", json), http.StatusMisdirectedRequest, `Host \"evil.example:8889\"`+rebound)
	f(post("evil.example", json), http.StatusMisdirectedRequest, `Host \"evil.example\"`+rebound)
	f(post("127.0.0.2:8889", json), http.StatusMisdirectedRequest, `Host \"127.0.0.2:8889\"`+rebound)
	f(post("[::1]:8889", json), http.StatusMisdirectedRequest, `Host \"[::1]:8889\"`+rebound)
	f(post("localhost.evil.example", json), http.StatusMisdirectedRequest, `Host \"localhost.evil.example\"`+rebound)
	// What tools send; a configured name; an allowed Origin.
	f(post("127.0.0.1:8889", json), http.StatusOK, "")
	f(post("127.0.0.1", "Content-Type: application/json; charset=utf-8"), http.StatusOK, "")
	f(post("LocalHost:9000", json), http.StatusOK, "")
	f(post("imcd.internal:80", json), http.StatusOK, "")
	resp, _ := rawHTTP(t, tr.LocalAddr(), post("127.0.0.1", json, "Origin: https://admin.example"))
	ran++
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" {
		t.Errorf("allowed Origin: %s %v", resp.Status, resp.Header)
	}
	// The preflight a browser sends first for JSON: granted only to an allowed Origin.
	resp, _ = rawHTTP(t, tr.LocalAddr(), []byte("OPTIONS /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://admin.example\r\n"+
		"Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"))
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "Content-Type" {
		t.Errorf("allowed preflight: %s %v", resp.Status, resp.Header)
	}
	resp, _ = rawHTTP(t, tr.LocalAddr(), []byte("OPTIONS /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"+
		"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"))
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %s %v", resp.Status, resp.Header)
	}
	if got := len(ops()); got != ran {
		t.Errorf("%d commands ran, want %d", got, ran)
	}
}
