package opensips_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

var room = imc.URI{User: "chat-1", Host: "127.0.0.1"}

func member(user string) imc.URI { return imc.URI{User: user, Host: "127.0.0.1"} }

func newNotice(to, body string) *imc.Notice {
	return &imc.Notice{From: room, To: member(to), Body: body, ContentType: "text/plain"}
}

// TestSendWire sends notices to URIs the fake answers differently and
// checks the t_uac_dlg requests as the fake parsed them.
func TestSendWire(t *testing.T) {
	fake := startFake(t, opensipstest.Options{FrTimeout: 100 * time.Millisecond})
	fake.SetStatus("sip:nf@127.0.0.1", "404 Not Found")
	fake.SetStatus("sip:ta@127.0.0.1", "480 Temporarily Unavailable")
	fake.SetNoAnswer("sip:silent@127.0.0.1")
	fake.SetError("sip:gone@127.0.0.1", 476, "Unresolvable destination (476/MI/UAC)")
	obs := newObserver()
	c := openClient(t, fake.MISocket(), func(c *opensips.MIClient) { c.Observer = obs; c.NextHop = "sip:127.0.0.1:5060;lr" })

	log := newSendLog(t)
	n := newNotice("ok", "hello from the sidecar")
	n.InReplyTo = "51699e06c1dedd92@lab"
	mustf(t, c.Send(n, 0, log.done), "send")
	c.Flush()
	waitFor(t, "the first request at the fake", func() bool { return len(fake.Deliveries()) == 1 })
	users := []string{"ok", "nf", "ta", "silent", "gone"}
	for i, user := range users[1:] {
		mustf(t, c.Send(newNotice(user, "to "+user), uint64(i+1), log.done), "send")
		c.Flush()
	}
	outs := log.wait(t, 5)
	byTag := map[string]delivery.Outcome{}
	for i, user := range users {
		byTag[user] = outs[uint64(i)]
	}
	check := func(tag string, status int, reason, class string) {
		t.Helper()
		o := byTag[tag]
		if o.Status != status || o.Reason != reason || o.Class() != class {
			t.Fatalf("%s: %+v (class %s), want %d %q %s", tag, o, o.Class(), status, reason, class)
		}
	}
	check("ok", 200, "200 OK", "2xx")
	check("nf", 404, "404 Not Found", "4xx")
	check("ta", 480, "480 Temporarily Unavailable", "4xx")
	check("silent", 408, "408 Request Timeout", "4xx")
	check("gone", 0, "476 Unresolvable destination (476/MI/UAC)", "error")
	var je *jsonrpc.Error
	if !errors.As(byTag["gone"].Err, &je) || je.Code != 476 {
		t.Fatalf("476: %v", byTag["gone"].Err)
	}
	if !byTag["ok"].Delivered() || byTag["nf"].Delivered() {
		t.Fatal("Delivered")
	}
	if obs.delivery("2xx") != 1 || obs.delivery("4xx") != 3 || obs.delivery("error") != 1 {
		t.Fatalf("counts %v", obs)
	}

	ds := fake.Deliveries()
	if len(ds) != 4 { // the 476 was refused, not delivered
		t.Fatalf("%d deliveries", len(ds))
	}
	d := ds[0]
	if d.Method != "MESSAGE" || d.MIMethod != "t_uac_dlg" || d.RURI != "sip:ok@127.0.0.1" || d.From != "sip:chat-1@127.0.0.1" ||
		d.To != "sip:ok@127.0.0.1" || d.ContentType != "text/plain" || d.InReplyTo != "51699e06c1dedd92@lab" ||
		d.NextHop != "sip:127.0.0.1:5060;lr" || d.Body != "hello from the sidecar" || d.FromTag == "" {
		t.Fatalf("delivery %+v", d)
	}
	if _, ok := d.Header("Content-Length"); ok {
		t.Fatal("Content-Length sent")
	}
	if ds[1].FromTag == d.FromTag {
		t.Fatal("From tags are not unique")
	}
	if c.Pending() != 0 {
		t.Fatalf("%d pending", c.Pending())
	}
}

// TestSendOutOfOrder checks that replies are matched by id whatever their
// order, and that requests leave in Send order.
func TestSendOutOfOrder(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	fake.SetDelay("sip:slow@127.0.0.1", 200*time.Millisecond)
	c := openClient(t, fake.MISocket(), nil)
	const slow = 1000
	log := newSendLog(t)
	mustf(t, c.Send(newNotice("slow", "first"), slow, log.done), "send")
	c.Flush()
	for i := range 50 {
		mustf(t, c.Send(newNotice("fast", fmt.Sprint(i)), uint64(i), log.done), "send")
		c.Flush()
	}
	outs := log.wait(t, 51)
	if tags := log.completed(); tags[50] != slow {
		t.Fatalf("slow reply was not last: %v", tags)
	}
	for _, o := range outs {
		if o.Status != 200 {
			t.Fatalf("outcome %+v", o)
		}
	}
	ds := fake.Deliveries()
	if ds[0].Body != "first" {
		t.Fatalf("first delivery %q", ds[0].Body)
	}
	for i, d := range ds[1:] {
		if d.Body != fmt.Sprint(i) {
			t.Fatalf("delivery %d has body %q: order not kept", i+1, d.Body)
		}
	}
}

// silentMI is a UDP socket that reads MI requests and never answers.
func silentMI(t *testing.T) (addr string, received func() int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	mustf(t, err, "listen")
	var mu sync.Mutex
	n := 0
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// closedPort returns a UDP address nothing listens on.
func closedPort(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	mustf(t, err, "listen")
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// TestCallTimeoutAndUnreachable: a Call to an OpenSIPS that does not
// answer ends ErrTimeout; to a port nothing listens on, ErrUnreachable
// (or ErrTimeout when the kernel's report comes late); a Send to a unix
// socket that does not exist ends unreachable.
func TestCallTimeoutAndUnreachable(t *testing.T) {
	t.Run("no reply", func(t *testing.T) {
		addr, received := silentMI(t)
		c := openClient(t, addr, func(c *opensips.MIClient) { c.CallTimeout = 200 * time.Millisecond })
		_, err := c.Call(context.Background(), "which", nil)
		if !errors.Is(err, opensips.ErrTimeout) || received() != 1 {
			t.Fatalf("Call: %v, received %d", err, received())
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		c := openClient(t, closedPort(t), nil)
		if _, err := c.Call(context.Background(), "which", nil); !errors.Is(err, opensips.ErrUnreachable) && !errors.Is(err, opensips.ErrTimeout) {
			t.Fatalf("Call: %v", err)
		}
	})
	t.Run("unix socket missing", func(t *testing.T) {
		c := openClient(t, "unix:"+filepath.Join(t.TempDir(), "nope.sock"), nil)
		log := newSendLog(t)
		mustf(t, c.Send(newNotice("bob", "x"), 1, log.done), "send")
		c.Flush()
		if o := log.wait(t, 1)[1]; o.Class() != "unreachable" {
			t.Fatalf("outcome %+v", o)
		}
	})
}

// TestSendUnix talks to a minimal mi_datagram on a unix socket, which
// answers from its own bound path as OpenSIPS does.
func TestSendUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mi.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	mustf(t, err, "listen")
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := srv.ReadFromUnix(buf)
			if err != nil {
				return
			}
			req := string(buf[:n])
			id := req[strings.LastIndex(req, `"id":`)+5 : len(req)-1]
			srv.WriteToUnix([]byte(`{"jsonrpc":"2.0","result":{"Status":"200 OK"},"id":`+id+`}`), from)
		}
	}()
	local := filepath.Join(dir, "imcd.sock")
	c := openClient(t, "unix:"+path, func(c *opensips.MIClient) { c.LocalPath = local })
	log := newSendLog(t)
	mustf(t, c.Send(newNotice("bob", "x"), 1, log.done), "send")
	c.Flush()
	if o := log.wait(t, 1)[1]; o.Status != 200 {
		t.Fatalf("outcome %+v", o)
	}
	c.Close()
	if _, err := net.Dial("unixgram", local); err == nil {
		t.Fatal("reply socket not removed on Close")
	}
}

func TestMIClientLifecycle(t *testing.T) {
	fake := startFake(t, opensipstest.Options{FrTimeout: 5 * time.Second})
	fake.SetNoAnswer("sip:silent@127.0.0.1")
	c := &opensips.MIClient{Addr: fake.MISocket()}
	log := newSendLog(t)
	if err := c.Send(newNotice("bob", "x"), 0, log.done); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("Send before Open: %v", err)
	}
	mustf(t, c.Open(context.Background()), "open")
	mustf(t, c.Send(newNotice("silent", "x"), 1, log.done), "send")
	c.Flush()
	waitFor(t, "in flight", func() bool { return len(fake.Deliveries()) == 1 })
	if c.Pending() != 1 {
		t.Fatalf("%d pending, want 1", c.Pending())
	}
	mustf(t, c.Close(), "close")
	mustf(t, c.Close(), "second close")
	if o := log.wait(t, 1)[1]; !errors.Is(o.Err, opensips.ErrClosed) || o.Class() != "aborted" {
		t.Fatalf("outcome after Close %+v", o)
	}
	if err := c.Send(newNotice("bob", "x"), 2, log.done); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if _, err := c.Call(context.Background(), "which", nil); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("Call after Close: %v", err)
	}
	bad := &imc.Notice{From: room, To: member("bob"), Body: "x", ContentType: "text/plain\r\nX: y"}
	c2 := openClient(t, fake.MISocket(), nil)
	if err := c2.Send(bad, 3, log.done); !errors.Is(err, opensips.ErrUnsafeHeader) {
		t.Fatalf("unsafe notice: %v", err)
	}
	if err := (&opensips.MIClient{Addr: "nonsense"}).Open(context.Background()); err == nil {
		t.Fatal("bad address accepted")
	}
}

// TestCall replays the captured event_subscribe requests through Call.
func TestCall(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	c := openClient(t, fake.MISocket(), nil)
	ctx := context.Background()
	f := func(method, params, wantResult string, wantErr string) {
		t.Helper()
		var p []byte
		if params != "" {
			p = []byte(params)
		}
		res, err := c.Call(ctx, method, p)
		if wantErr != "" {
			var je *jsonrpc.Error
			if !errors.As(err, &je) || je.Error() != wantErr {
				t.Fatalf("%s %s: err %v, want %s", method, params, err, wantErr)
			}
			return
		}
		if err != nil || string(res) != wantResult {
			t.Fatalf("%s %s: %s %v, want %s", method, params, res, err, wantResult)
		}
	}
	f("event_subscribe", `{"event":"E_IMC_MESSAGE","socket":"udp:127.0.0.1:9999","expire":3600}`, `"OK"`, "")
	f("evi:subscribe", `{"event":"E_IMC_MESSAGE","socket":"tcp:127.0.0.1:9998","expire":"3600"}`, `"OK"`, "")
	f("event_subscribe", `["E_IMC_MESSAGE","udp:127.0.0.1:9997",3600]`, `"OK"`, "")
	f("event_subscribe", `{"event":"E_NO_SUCH_EVENT","socket":"udp:127.0.0.1:9999","expire":3600}`, "", "400 Bad parameter value")
	f("event_subscribe", `{"event":"E_IMC_MESSAGE","socket":"foo:127.0.0.1:9999","expire":3600}`, "", "400 Bad parameter value")
	f("event_subscribe", `{"event":"E_IMC_MESSAGE","socket":"udp:127.0.0.1:9999","expire":-1}`, "", "-32602 Invalid params: Negative expire value")
	f("event_subscribe", `{"event":"E_IMC_MESSAGE"}`, "", "-32602 Invalid params: Too few or too many parameters")
	f("no_such_cmd", "", "", "-32601 Method not found")
	f("which", `{"command":"imc_list_members"}`, `[["room"]]`, "")
	if n := len(fake.Subscriptions("E_IMC_MESSAGE")); n != 3 {
		t.Fatalf("%d subscriptions", n)
	}
	if _, err := c.Call(ctx, "", nil); !errors.Is(err, opensips.ErrForbiddenRequest) {
		t.Fatalf("empty method: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Call(cctx, "which", nil); err == nil {
		// The reply may win the race against the cancelled context.
		t.Log("reply came before the cancellation was seen")
	}
}
