package opensips_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestForward passes captured requests through and compares the replies
// byte for byte with what the real OpenSIPS answered.
func TestForward(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	c := openClient(t, fake.MISocket(), nil)
	ctx := context.Background()
	f := func(name string) {
		t.Helper()
		req := readWire(t, "mi/datagram/"+name+".request.json")
		want := readWire(t, "mi/datagram/"+name+".response.json")
		got, err := c.Forward(ctx, req)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s:\n got %s (%v)\nwant %s", name, got, err, want)
		}
	}
	f("which_all")
	f("which")
	f("unknown_command")
	f("event_subscribe")
	f("event_subscribe_no_expire")
	f("event_subscribe_bad_socket")
	f("no_jsonrpc_field")
	f("jsonrpc_1_0")
	f("params_string")
	f("events_list")
	got, err := c.Forward(ctx, readWire(t, "mi/datagram/parse_error.request.json"))
	if err != nil || string(got) != string(readWire(t, "mi/datagram/parse_error.response.txt")) {
		t.Fatalf("parse error: %q %v", got, err)
	}
	// opensips-cli's own formatting passes through untouched.
	got, err = c.Forward(ctx, []byte(`{"jsonrpc": "2.0", "id": "18587", "method": "which", "params": {}}`))
	if err != nil || !strings.HasPrefix(string(got), `{"jsonrpc":"2.0","result":["statistics:get",`) || !strings.HasSuffix(string(got), `,"id":"18587"}`) {
		t.Fatalf("cli which: %s %v", got, err)
	}
	// An asynchronous command: the reply comes when the transaction ends.
	got, err = c.Forward(ctx, readWire(t, "t_uac_dlg/ok_200.request.json"))
	if err != nil || !strings.HasPrefix(string(got), `{"jsonrpc":"2.0","result":{"Status":"200 OK","Message":"Via: SIP/2.0/UDP `) {
		t.Fatalf("t_uac_dlg: %s %v", got, err)
	}
	// A notification is sent, and nothing is awaited.
	before := len(fake.Calls())
	got, err = c.Forward(ctx, readWire(t, "t_uac_dlg/notification_no_id.request.json"))
	if got != nil || err != nil {
		t.Fatalf("notification: %s %v", got, err)
	}
	waitFor(t, "notification executed", func() bool { return len(fake.Calls()) == before+1 })

	// What crashes mi_datagram is never sent.
	for _, name := range []string{"no_method_CRASH", "batch_array_CRASH"} {
		if _, err := c.Forward(ctx, readWire(t, "mi/datagram/"+name+".request.json")); !errors.Is(err, opensips.ErrForbiddenRequest) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, req := range []string{`{"jsonrpc":"2.0","method":7,"id":1}`, `{"jsonrpc":"2.0","method":"","id":1}`, `"which"`,
		`{"jsonrpc":"2.0","METHOD":"core:kill","method":"which","id":1}`, `{"jsonrpc":"2.0","method":"which","method":"core:kill","id":1}`} {
		if _, err := c.Forward(ctx, []byte(req)); !errors.Is(err, opensips.ErrForbiddenRequest) {
			t.Fatalf("%s: %v", req, err)
		}
	}
	if fake.Crashes() != 0 {
		t.Fatal("crash request reached OpenSIPS")
	}
}

func TestForwardNoAnswer(t *testing.T) {
	addr, received := silentMI(t)
	c := openClient(t, addr, func(c *opensips.MIClient) { c.CallTimeout = 150 * time.Millisecond })
	start := time.Now()
	_, err := c.Forward(context.Background(), []byte(`{"jsonrpc":"2.0","method":"which","id":1}`))
	if !errors.Is(err, opensips.ErrTimeout) || !strings.Contains(err.Error(), "OpenSIPS did not answer") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("waited %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Forward(ctx, []byte(`{"jsonrpc":"2.0","method":"which","id":2}`)); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, opensips.ErrTimeout) {
		t.Fatalf("ctx deadline: %v", err)
	}
	waitFor(t, "requests received", func() bool { return received() == 2 })

	c2 := openClient(t, closedPort(t), nil)
	if _, err := c2.Forward(context.Background(), []byte(`{"jsonrpc":"2.0","method":"which","id":1}`)); !errors.Is(err, opensips.ErrUnreachable) {
		t.Fatalf("closed port: %v", err)
	}
}
