package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// opensipsCLIFIFO does over imcd's FIFO what opensips-cli does with its
// defaults (python-opensips's FIFO.execute, fifo_reply_dir /tmp unless
// replyDir says otherwise): a reply FIFO named
// opensips_fifo_reply_<pid>_<time> made with mkfifo and chmod 0666, an
// open and close of the command FIFO without writing (its check), the
// request written, and the reply read from the reply FIFO until imcd closes
// it. It returns the reply.
func opensipsCLIFIFO(t *testing.T, fifo, replyDir, request string) []byte {
	t.Helper()
	now := time.Now()
	name := fmt.Sprintf("opensips_fifo_reply_%d_%d_%d", os.Getpid(), now.Unix(), now.Nanosecond()/1000)
	path := filepath.Join(replyDir, name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	wait := awaitFIFOReply(path)
	for _, b := range []string{"", ":" + name + ":" + request} {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(b)); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	b, ok := wait(10 * time.Second)
	if !ok {
		t.Fatalf("no reply in 10s to %s with its reply FIFO in %s", request, replyDir)
	}
	return b
}

// awaitFIFOReply opens the reply FIFO at path for reading, as a client
// does (the open waits for imcd to open it for writing), and reads until
// imcd closes it; the function it returns waits for that, false when it
// took longer than limit (a client like opensips-cli would wait for ever:
// the reader is unblocked). The reader starts at once, so that imcd finds
// it however slowly the test goes on to write the request.
func awaitFIFOReply(path string) func(limit time.Duration) ([]byte, bool) {
	got := make(chan []byte, 1)
	go func() {
		r, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			got <- []byte(err.Error())
			return
		}
		b, _ := io.ReadAll(r)
		r.Close()
		got <- b
	}()
	return func(limit time.Duration) ([]byte, bool) {
		select {
		case b := <-got:
			return b, true
		case <-time.After(limit):
			if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			<-got
			return nil, false
		}
	}
}

// TestOpensipsCLIDefaultFIFO: opensips-cli left at fifo_reply_dir /tmp is
// told, through its reply FIFO, to use imcd's reply directory (the error
// opensips-cli prints), with its request's id and without the request being
// run; pointed at that directory it gets its answer.
func TestOpensipsCLIDefaultFIFO(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	dir := filepath.Dir(p.fifo) // mi_fifo_reply_dir's default
	which := `{"jsonrpc": "2.0", "id": "17043", "method": "which", "params": {}}`

	b := opensipsCLIFIFO(t, p.fifo, "/tmp", which)
	var reply struct {
		ID    string `json:"id"`
		Error struct {
			Code int    `json:"code"`
			Data string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &reply); err != nil || reply.ID != "17043" || reply.Error.Code != -32002 ||
		!strings.Contains(reply.Error.Data, "-o fifo_reply_dir="+dir) {
		t.Errorf("with the reply FIFO in /tmp: %s (%v); want error -32002 naming fifo_reply_dir=%s", b, err, dir)
	}
	// The reply is written before the line is logged, and imcd's log
	// reaches the harness through a pipe: wait for it.
	if !waitFor(10*time.Second, func() bool {
		return strings.Contains(p.log.String(), "MI FIFO request not run: its reply FIFO is outside the reply directory")
	}) {
		t.Errorf("nothing logged:\n%s", p.log.String())
	}

	b = opensipsCLIFIFO(t, p.fifo, dir, which)
	if !bytes.Contains(b, []byte(`"imc_list_rooms"`)) || !bytes.HasSuffix(b, []byte(`"id":"17043"}`)) {
		t.Errorf("with the reply FIFO in %s: %s", dir, b)
	}
}
