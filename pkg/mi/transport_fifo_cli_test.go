package mi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cliReplyFIFO creates a reply FIFO in /tmp as opensips-cli does with its
// defaults (python-opensips's FIFO.execute): named
// opensips_fifo_reply_<pid>_<time.time() with '.' as '_'>, made with
// mkfifo and then chmod 0666. It is removed at the test's end.
func cliReplyFIFO(t *testing.T) (name, path string) {
	t.Helper()
	now := time.Now()
	name = fmt.Sprintf("opensips_fifo_reply_%d_%d_%d", os.Getpid(), now.Unix(), now.Nanosecond()/1000)
	path = filepath.Join(CLIReplyDir, name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	return name, path
}

// cliRequest is what opensips-cli writes into the command FIFO for
// `-x mi which` (the captured bytes), with its reply FIFO named name.
func cliRequest(t *testing.T, name string) []byte {
	t.Helper()
	captured := readWire(t, "opensips-cli/sent-bytes/fifo-1-which.req.txt")
	old := captured[1 : 1+bytes.IndexByte(captured[1:], ':')]
	return bytes.Replace(captured, old, []byte(name), 1)
}

// TestFIFOOpensipsCLIDefault: opensips-cli with its default fifo_reply_dir
// (/tmp) gets an error that says which directory to use, with its request's
// id, instead of waiting for ever; the request is not run. With the reply
// directory it says, the same request is answered.
func TestFIFOOpensipsCLIDefault(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	runs := countCommand(t, s)
	tr := openFIFO(t, s)

	name, path := cliReplyFIFO(t)
	probeFIFO(t, tr.Path) // opensips-cli's check before each request
	writeFIFO(t, tr.Path, cliRequest(t, name))
	b, err := readReply(path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &reply); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	if reply.JSONRPC != "2.0" || string(reply.ID) != `"17043"` || reply.Error.Code != CodeReplyFIFO ||
		!strings.Contains(reply.Error.Data, "-o fifo_reply_dir="+tr.replyDir()) {
		t.Errorf("reply %s: want error %d with the request's id \"17043\" naming fifo_reply_dir=%s", b, CodeReplyFIFO, tr.replyDir())
	}

	// A command is not run when its reply FIFO is in /tmp.
	name, path = cliReplyFIFO(t)
	writeFIFO(t, tr.Path, []byte(":"+name+`:{"jsonrpc": "2.0", "id": "1", "method": "test:count", "params": {}}`))
	if b, err := readReply(path, 5*time.Second); err != nil || !bytes.Contains(b, []byte(`"code":-32002`)) {
		t.Errorf("test:count with its reply FIFO in /tmp: %q, %v", b, err)
	}
	// Done as the error says: answered.
	if b := fifoCall(t, tr, []byte(`:opensips_fifo_reply_1_2:{"jsonrpc": "2.0", "id": "2", "method": "test:count", "params": {}}`)); string(b) != `{"jsonrpc":"2.0","result":"OK","id":"2"}` {
		t.Errorf("in the reply directory: %s", b)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("test:count ran %d times, want once (only with its reply FIFO in the reply directory)", n)
	}
}

// TestFIFOOutsideRefused: in /tmp, imcd writes only into a FIFO whose
// owner could have sent the request: not into another user's FIFO, a
// symbolic link (to a FIFO of imcd's own user, even), or a file.
func TestFIFOOutsideRefused(t *testing.T) {
	s := newServer(t, state(t, stateInitial), nil)
	tr := openFIFO(t, s)
	target := filepath.Join(t.TempDir(), "target")
	if err := syscall.Mkfifo(target, 0o666); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(path string) error{
		"link": func(p string) error { return os.Symlink(target, p) },
		"file": func(p string) error { return os.WriteFile(p, []byte("keep"), 0o666) },
	}
	if os.Geteuid() == 0 {
		cases["nobody's FIFO"] = func(p string) error {
			if err := syscall.Mkfifo(p, 0o666); err != nil {
				return err
			}
			return os.Chown(p, nobody, nobody)
		}
	}
	for what, make := range cases {
		name, path := cliReplyFIFO(t)
		os.Remove(path)
		if err := make(path); err != nil {
			t.Fatal(err)
		}
		// A reader is there, so only the checks keep imcd from writing.
		r, err := os.OpenFile(target, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		var r2 *os.File
		if what == "nobody's FIFO" {
			if r2, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err != nil {
				t.Fatal(err)
			}
		}
		writeFIFO(t, tr.Path, cliRequest(t, name))
		// The loop answers in order: once the next request is answered,
		// this one was handled.
		fifoCall(t, tr, readWire(t, "mi/fifo/unknown_command.request.txt"))
		for _, f := range []*os.File{r, r2} {
			if f == nil {
				continue
			}
			if b, err := io.ReadAll(f); len(b) > 0 || err != nil && !errors.Is(err, syscall.EAGAIN) {
				t.Errorf("%s: %q written (%v)", what, b, err)
			}
			f.Close()
		}
		if what == "file" {
			if b, _ := os.ReadFile(path); string(b) != "keep" {
				t.Errorf("file: now %q", b)
			}
		}
	}
}

// TestFIFOOutsideGroup: with the command FIFO open to a group (0660), a
// reply FIFO in /tmp of a member of that group is told; with 0600, not.
func TestFIFOOutsideGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a FIFO to another user")
	}
	s := newServer(t, state(t, stateInitial), nil)
	for _, c := range []struct {
		mode os.FileMode
		told bool
	}{{0o660, true}, {0o600, false}} {
		dir := t.TempDir()
		tr := &FIFOTransport{Server: s, Path: filepath.Join(dir, "imcd_fifo"), Mode: c.mode, Group: "65534"}
		if err := tr.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		name, path := cliReplyFIFO(t)
		if err := os.Chown(path, nobody, nobody); err != nil { // nobody's primary group is 65534
			t.Fatal(err)
		}
		r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		writeFIFO(t, tr.Path, cliRequest(t, name))
		fifoCall(t, tr, readWire(t, "mi/fifo/unknown_command.request.txt"))
		b, _ := io.ReadAll(r)
		r.Close()
		if told := bytes.Contains(b, []byte(`"code":-32002`)); told != c.told {
			t.Errorf("command FIFO %04o: nobody's reply FIFO got %q; want told = %v", c.mode, b, c.told)
		}
		tr.Close()
	}
}
