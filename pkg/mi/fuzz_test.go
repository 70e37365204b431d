package mi

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/valyala/fastjson"
)

// FuzzHandle: whatever arrives, the server answers a JSON-RPC 2.0 envelope
// that is valid JSON (encoding/json's reading, stricter than fastjson's)
// (or nothing, for a notification), never panics and never hangs. The
// seeds are every captured request; testdata/fuzz/FuzzHandle holds more.
func FuzzHandle(f *testing.F) {
	for _, glob := range []string{"mi/datagram/*.request.json", "opensips-cli/sent-bytes/datagram-*.req.json"} {
		paths, _ := filepath.Glob(filepath.Join(wire, glob))
		for _, p := range paths {
			f.Add(readWire(f, p[len(wire)+1:]))
		}
	}
	admin, _ := recordingAdmin(nil)
	s := newServer(f, state(f, stateInitial), admin)
	s.MaxRequest = 4096
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, req []byte) {
		reply := s.Handle(context.Background(), req)
		if reply == nil {
			return
		}
		v, err := p.ParseBytes(reply)
		if err != nil || !json.Valid(reply) {
			t.Fatalf("reply is not JSON: %q -> %q", req, reply)
		}
		if string(v.GetStringBytes("jsonrpc")) != "2.0" || (v.Get("result") == nil) == (v.Get("error") == nil) || v.Get("id") == nil {
			t.Fatalf("reply is no JSON-RPC 2.0 response: %q -> %q", req, reply)
		}
		if s.Panics() != 0 {
			t.Fatalf("a command panicked on %q", req)
		}
	})
}

// FuzzSplitFIFO: the FIFO framing always makes progress, stays within the
// buffer, and returns requests that are bracket-balanced JSON values.
func FuzzSplitFIFO(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(wire, "mi/fifo/*.request.txt"))
	more, _ := filepath.Glob(filepath.Join(wire, "opensips-cli/sent-bytes/fifo-*.req.txt"))
	for _, p := range append(paths, more...) {
		b := readWire(f, p[len(wire)+1:])
		f.Add(b)
		f.Add(append(append(bytes.Clone(b), '\n'), b...))
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for off := 0; off < len(b); {
			fr, n, err := splitFIFO(b[off:])
			if n < 0 || off+n > len(b) {
				t.Fatalf("n=%d at %d of %d", n, off, len(b))
			}
			if err == errFIFOIncomplete {
				break
			}
			if n == 0 {
				t.Fatalf("no progress at %d: %q", off, b[off:])
			}
			if err == nil {
				if bytes.ContainsAny(fr.reply, ":\n") || len(fr.reply) > maxReplyName {
					t.Fatalf("reply name %q", fr.reply)
				}
				if size, ok := scanJSON(fr.req); !ok || size != len(fr.req) || (fr.req[0] != '{' && fr.req[0] != '[') {
					t.Fatalf("request %q", fr.req)
				}
			}
			off += n
		}
	})
}
