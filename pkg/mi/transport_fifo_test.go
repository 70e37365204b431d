package mi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// openFIFO serves s on a FIFO in a temporary directory, which is also the
// reply directory.
func openFIFO(t *testing.T, s *Server) *FIFOTransport {
	t.Helper()
	dir := t.TempDir()
	tr := &FIFOTransport{Server: s, Path: filepath.Join(dir, "imcd_fifo")}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// writeFIFO writes b into the FIFO at path in one write, as opensips-cli
// does, and closes it.
func writeFIFO(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Error(err)
	}
}

// countCommand registers test:count, which answers "OK", and returns how
// many times it ran.
func countCommand(t testing.TB, s *Server) *atomic.Int32 {
	t.Helper()
	var runs atomic.Int32
	if err := s.Registry.Register(Command{Name: "test:count", Handler: func(context.Context, *fastjson.Value) ([]byte, error) {
		runs.Add(1)
		return []byte(`"OK"`), nil
	}}); err != nil {
		t.Fatal(err)
	}
	return &runs
}

// probeFIFO opens and closes the FIFO without writing: opensips-cli's check.
func probeFIFO(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// makeReplyFIFO creates the reply FIFO name in dir, as a client does.
func makeReplyFIFO(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}

// readReply opens the reply FIFO for reading (waiting for imcd to open it
// for writing) and reads until imcd closes it. It gives up after timeout.
func readReply(path string, timeout time.Duration) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(timeout):
		// Unblock the reader: open the FIFO as a writer ourselves.
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-ch
		return nil, fmt.Errorf("no reply in %s on %s", timeout, path)
	}
}

// fifoCall sends request (":name:{json}") and returns the reply.
func fifoCall(t testing.TB, tr *FIFOTransport, request []byte) []byte {
	t.Helper()
	name := request[1 : 1+bytes.IndexByte(request[1:], ':')]
	path := makeReplyFIFO(t, tr.replyDir(), string(name))
	defer os.Remove(path) // as opensips-cli does
	writeFIFO(t, tr.Path, request)
	b, err := readReply(path, 3*time.Second)
	if err != nil {
		t.Error(err)
	}
	return b
}

func TestFIFOCaptured(t *testing.T) {
	tr := openFIFO(t, newServer(t, state(t, stateInitial), nil))
	for _, c := range []struct {
		name  string
		exact bool
	}{
		{"imc_list_members", true},
		{"imc_list_members_no_such_room", true},
		{"imc_list_rooms", false},
		{"unknown_command", true},
	} {
		got := fifoCall(t, tr, readWire(t, "mi/fifo/"+c.name+".request.txt"))
		want := readWire(t, "mi/fifo/"+c.name+".response.txt")
		if c.exact {
			sameBytes(t, c.name, got, want)
		} else {
			sameJSON(t, c.name, got, want)
		}
	}
}

// TestFIFOOpensipsCLI replays opensips-cli over the FIFO: a probe (open and
// close without writing) before each request, which, then the command.
func TestFIFOOpensipsCLI(t *testing.T) {
	tr := openFIFO(t, newServer(t, state(t, stateCLI), nil))
	probeFIFO(t, tr.Path)
	got := fifoCall(t, tr, readWire(t, "opensips-cli/sent-bytes/fifo-1-which.req.txt"))
	for _, n := range imcNames {
		if !bytes.Contains(got, []byte(`"`+n+`"`)) {
			t.Errorf("which: %q missing from %s", n, got)
		}
	}
	if rawID(t, got) != `"17043"` {
		t.Errorf("which: %s", got)
	}
	for range 5 {
		writeFIFO(t, tr.Path, readWire(t, "opensips-cli/sent-bytes/fifo-2-empty-open-close-probe.req.txt"))
		probeFIFO(t, tr.Path)
	}
	sameBytes(t, "imc_list_rooms", fifoCall(t, tr, readWire(t, "opensips-cli/sent-bytes/fifo-3-imc_list_rooms.req.txt")),
		readWire(t, "opensips-cli/sent-bytes/fifo-3-imc_list_rooms.minimal-reply.json"))
}

// TestFIFOFraming: requests back to back in one write, with newlines, after
// junk, and one that never completes.
func TestFIFOFraming(t *testing.T) {
	tr := openFIFO(t, newServer(t, state(t, stateInitial), nil))
	dir := tr.replyDir()
	a, b, c := makeReplyFIFO(t, dir, "r_a"), makeReplyFIFO(t, dir, "r_b"), makeReplyFIFO(t, dir, "r_c")
	writeFIFO(t, tr.Path, []byte("junk without a colon\n:r_a:{\"jsonrpc\":\"2.0\",\"method\":\"which\",\"params\":[\"imc_list_members\"],\"id\":1}\n"+
		":r_b: [\"not\", \"an object\"]:r_c:\n{\"jsonrpc\":\"2.0\",\"method\":\"imc_list_members\",\"params\":{\"room\":\"sip:x}{[@y\"},\"id\":3}"))
	for _, c := range []struct{ path, want string }{
		{a, `{"jsonrpc":"2.0","result":[["room"]],"id":1}`},
		{b, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`},
		{c, `{"jsonrpc":"2.0","error":{"code":400,"message":"bad param"},"id":3}`},
	} {
		got, err := readReply(c.path, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, c.path, got, []byte(c.want))
	}
	// An incomplete request is answered with a parse error after a second
	// without bytes (the captured parse_error request).
	d := makeReplyFIFO(t, dir, "r_d")
	start := time.Now()
	writeFIFO(t, tr.Path, append([]byte(":r_d:"), readWire(t, "mi/datagram/parse_error.request.json")...))
	got, err := readReply(d, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "incomplete", got, []byte(`{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`))
	if e := time.Since(start); e < fifoPartialTimeout/2 {
		t.Errorf("incomplete request answered after %s", e)
	}
}

// TestFIFOConcurrentWriters: clients writing at once all get their reply.
func TestFIFOConcurrentWriters(t *testing.T) {
	tr := openFIFO(t, newServer(t, state(t, stateInitial), nil))
	const clients = 20
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("opensips_fifo_reply_%d_1795643792_%d", os.Getpid(), i)
			req := fmt.Sprintf(`:%s:{"jsonrpc": "2.0", "id": "%d", "method": "imc_list_members", "params": ["sip:native-2@127.0.0.1"]}`, name, i)
			want := fmt.Sprintf(`{"jsonrpc":"2.0","result":{"ROOM":"sip:native-2@127.0.0.1","MEMBERS":["sip:bob@127.0.0.1","sip:carol@127.0.0.1"],"NO_MEMBERS":2},"id":"%d"}`, i)
			got := fifoCall(t, tr, []byte(req))
			if string(got) != want {
				t.Errorf("client %d: %s", i, got)
			}
		}()
	}
	wg.Wait()
}

// TestFIFOBadReplyFIFOs: a reply FIFO that is missing, has no reader, is no
// FIFO or is named outside the reply directory does not stop the server,
// and a request whose reply cannot be delivered (no reply FIFO, not a
// FIFO, not a plain name) is not run.
func TestFIFOBadReplyFIFOs(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	runs := countCommand(t, s)
	tr := openFIFO(t, s)
	dir := tr.replyDir()
	count := func(name string) []byte {
		return []byte(`:` + name + `:{"jsonrpc":"2.0","method":"test:count","id":1}`)
	}
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := syscall.Mkfifo(outside, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	makeReplyFIFO(t, dir, "nobody_reads")

	writeFIFO(t, tr.Path, count("missing"))    // not run: no reply FIFO
	writeFIFO(t, tr.Path, count("regular"))    // not run: no FIFO
	writeFIFO(t, tr.Path, count("link"))       // not run: symlink
	writeFIFO(t, tr.Path, count("../outside")) // refused
	writeFIFO(t, tr.Path, count(".hidden"))    // refused
	writeFIFO(t, tr.Path, count(""))           // refused
	sameBytes(t, "after bad reply FIFOs", fifoCall(t, tr, readWire(t, "mi/fifo/imc_list_members.request.txt")),
		readWire(t, "mi/fifo/imc_list_members.response.txt"))
	// A reply FIFO nobody reads is given up after replyOpenWait: the next
	// request is served within a second (with slack for a loaded machine).
	start := time.Now()
	writeFIFO(t, tr.Path, count("nobody_reads"))
	sameBytes(t, "after a reply FIFO without reader", fifoCall(t, tr, readWire(t, "mi/fifo/imc_list_members.request.txt")),
		readWire(t, "mi/fifo/imc_list_members.response.txt"))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("next request answered after %s", d)
	}
	if n := runs.Load(); n != 1 { // nobody_reads: only writing finds there is no reader
		t.Errorf("%d requests ran, want 1", n)
	}
	if b, _ := os.ReadFile(regular); len(b) != 0 {
		t.Errorf("reply written into a regular file: %s", b)
	}
}

func TestFIFOLifecycle(t *testing.T) {
	dir := t.TempDir()
	s := newServer(t, state(t, stateInitial), nil)
	path := filepath.Join(dir, "imcd_fifo")
	tr := &FIFOTransport{Server: s, Path: path, Mode: 0o620}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o620 {
		t.Fatalf("FIFO: %v %v", fi.Mode(), err)
	}
	within(t, 2*time.Second, "Close", func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FIFO left after Close: %v", err)
	}
	// A FIFO left behind is reused (and kept at Close); a file is refused.
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	tr2 := &FIFOTransport{Server: s, Path: path, ReplyDir: dir}
	if err := tr2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "reused FIFO", fifoCall(t, tr2, readWire(t, "mi/fifo/unknown_command.request.txt")),
		readWire(t, "mi/fifo/unknown_command.response.txt"))
	tr2.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("reused FIFO removed: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o600)
	if err := (&FIFOTransport{Server: s, Path: file}).Listen(context.Background()); !errors.Is(err, ErrNotFIFO) {
		t.Errorf("regular file: %v", err)
	}
	if err := (&FIFOTransport{Server: s}).Listen(context.Background()); !errors.Is(err, ErrNoPath) {
		t.Errorf("no path: %v", err)
	}
}
