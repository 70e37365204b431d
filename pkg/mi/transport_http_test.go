package mi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func openHTTP(t *testing.T, s *Server) *HTTPTransport {
	t.Helper()
	tr := &HTTPTransport{Server: s, Addr: "127.0.0.1:0"}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// rawHTTP writes raw bytes on a new TCP connection and reads one response;
// the body is read to the end, so a response that never ends fails.
func rawHTTP(t *testing.T, addr net.Addr, raw []byte) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to %q: %v", raw, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body of the response to %q: %v", raw, err)
	}
	return resp, body
}

// readCapturedResponse parses a captured mi_http response.
func readCapturedResponse(t *testing.T, rel string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(readWire(t, rel))), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// TestHTTPCaptured replays the mi_http captures: same status, same
// Content-Type, same body (the JSON compared by value where the native
// module lists rooms in hash order).
func TestHTTPCaptured(t *testing.T) {
	tr := openHTTP(t, newServer(t, state(t, stateInitial), nil))
	for _, c := range []struct {
		name  string
		exact bool
	}{
		{"imc_list_members", true},
		{"imc_list_members_missing_param", true},
		{"imc_list_members_no_such_room", true},
		{"imc_list_rooms", false},
		{"parse_error", true},
		{"unknown_command", true},
		{"wrong_path", true},
	} {
		resp, body := rawHTTP(t, tr.LocalAddr(), readWire(t, "mi/http/"+c.name+".request.http"))
		want, wantBody := readCapturedResponse(t, "mi/http/"+c.name+".response.http")
		if resp.StatusCode != want.StatusCode || resp.Header.Get("Content-Type") != want.Header.Get("Content-Type") {
			t.Errorf("%s: %s %q, want %s %q", c.name, resp.Status, resp.Header.Get("Content-Type"), want.Status, want.Header.Get("Content-Type"))
		}
		if resp.ContentLength != int64(len(body)) || resp.Header.Get("Connection") != "close" && !resp.Close {
			t.Errorf("%s: Content-Length %d for %d bytes, close %v", c.name, resp.ContentLength, len(body), resp.Close)
		}
		if c.exact {
			sameBytes(t, c.name, body, wantBody)
		} else {
			sameJSON(t, c.name, body, wantBody)
		}
	}
}

// TestHTTPDifferences: where mi_http hangs, imcd answers.
func TestHTTPDifferences(t *testing.T) {
	tr := openHTTP(t, newServer(t, state(t, stateInitial), nil))
	// GET: 405 with an empty, non-chunked body, and the connection closes.
	resp, body := rawHTTP(t, tr.LocalAddr(), readWire(t, "mi/http/get_root.request.http"))
	if resp.StatusCode != http.StatusMethodNotAllowed || len(body) != 0 || resp.ContentLength != 0 ||
		len(resp.TransferEncoding) != 0 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %s %v %q", resp.Status, resp.Header, body)
	}
	// Content-Type text/plain, which mi_http never answers: 415 and why.
	resp, body = rawHTTP(t, tr.LocalAddr(), readWire(t, "mi/http/wrong_ctype.request.http"))
	if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("text/plain: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	sameBytes(t, "text/plain", body, []byte(`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Unsupported Media Type",`+
		`"data":"Content-Type must be application/json, not \"text/plain\""},"id":null}`))
	// A notification: 204.
	note := `{"jsonrpc":"2.0","method":"imc_list_rooms"}`
	resp, body = rawHTTP(t, tr.LocalAddr(), []byte("POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(note))+"\r\n\r\n"+note))
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Errorf("notification: %s %q", resp.Status, body)
	}
}

// TestHTTPOpensipsCLI replays opensips-cli over HTTP: the bare
// connect/close probe, then which, then the command.
func TestHTTPOpensipsCLI(t *testing.T) {
	tr := openHTTP(t, newServer(t, state(t, stateCLI), nil))
	probe, err := net.Dial("tcp", tr.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	resp, body := rawHTTP(t, tr.LocalAddr(), readWire(t, "opensips-cli/sent-bytes/http-2-which.req.http"))
	names := resultNames(t, body)
	for _, n := range imcNames {
		if !slices.Contains(names, n) {
			t.Errorf("which: %q missing from %q", n, names)
		}
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || rawID(t, body) != `"8370"` {
		t.Errorf("which: %s %q %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	resp, body = rawHTTP(t, tr.LocalAddr(), readWire(t, "opensips-cli/sent-bytes/http-3-imc_list_rooms.req.http"))
	want, wantBody := readCapturedResponse(t, "opensips-cli/sent-bytes/http-3-imc_list_rooms.minimal-reply.http")
	if resp.StatusCode != want.StatusCode || resp.Header.Get("Content-Type") != want.Header.Get("Content-Type") {
		t.Errorf("imc_list_rooms: %s %v", resp.Status, resp.Header)
	}
	sameBytes(t, "imc_list_rooms", body, wantBody)
}

func TestHTTPOversize(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	s.MaxRequest = 100
	tr := openHTTP(t, s)
	req := `{"jsonrpc":"2.0","method":"imc_list_rooms","id":1,"pad":"` + strings.Repeat("x", 5000) + `"}`
	resp, body := rawHTTP(t, tr.LocalAddr(), []byte("POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(req))+"\r\n\r\n"+req))
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("oversize: %s, close %v", resp.Status, resp.Close)
	}
	sameBytes(t, "oversize", body, []byte(`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"request larger than 100 bytes"},"id":null}`))
}

func TestHTTPLifecycle(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	tr := &HTTPTransport{Server: s, Addr: "127.0.0.1:0", Path: "/imcd"}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := tr.LocalAddr()
	resp, _ := rawHTTP(t, addr, []byte("POST /imcd HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("configured path: %s", resp.Status)
	}
	within(t, 2*time.Second, "Close", func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	if c, err := net.Dial("tcp", addr.String()); err == nil {
		c.Close()
		t.Error("still accepting after Close")
	}
}
