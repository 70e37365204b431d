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

// outcomes collects delivery outcomes in the order they complete.
type outcomes struct {
	mu   sync.Mutex
	tags []string
	outs []opensips.Outcome
}

func (o *outcomes) done(tag string) func(opensips.Outcome) {
	return func(out opensips.Outcome) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.tags = append(o.tags, tag)
		o.outs = append(o.outs, out)
	}
}

func (o *outcomes) wait(t *testing.T, n int) ([]string, []opensips.Outcome) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d outcomes", n), func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.outs) >= n
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.tags...), append([]opensips.Outcome(nil), o.outs...)
}

// TestDeliverStatuses sends notices to URIs the fake answers differently.
func TestDeliverStatuses(t *testing.T) {
	fake := startFake(t, opensipstest.Options{FrTimeout: 100 * time.Millisecond})
	fake.SetStatus("sip:nf@127.0.0.1", "404 Not Found")
	fake.SetStatus("sip:ta@127.0.0.1", "480 Temporarily Unavailable")
	fake.SetNoAnswer("sip:silent@127.0.0.1")
	fake.SetError("sip:gone@127.0.0.1", 476, "Unresolvable destination (476/MI/UAC)")
	obs := newObserver()
	c := openClient(t, fake.MISocket(), func(c *opensips.MIClient) { c.Observer = obs; c.NextHop = "sip:127.0.0.1:5060;lr" })

	var got outcomes
	n := newNotice("ok", "hello from the sidecar")
	n.InReplyTo = "51699e06c1dedd92@lab"
	mustf(t, c.Deliver(n, got.done("ok")), "deliver")
	for _, user := range []string{"nf", "ta", "silent", "gone"} {
		mustf(t, c.Deliver(newNotice(user, "to "+user), got.done(user)), "deliver")
	}
	tags, outs := got.wait(t, 5)
	byTag := map[string]opensips.Outcome{}
	for i, tag := range tags {
		byTag[tag] = outs[i]
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

// TestDeliverOutOfOrder checks that replies are matched by id whatever
// their order, and that requests leave in Deliver order.
func TestDeliverOutOfOrder(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	fake.SetDelay("sip:slow@127.0.0.1", 200*time.Millisecond)
	c := openClient(t, fake.MISocket(), nil)
	var got outcomes
	mustf(t, c.Deliver(newNotice("slow", "first"), got.done("slow")), "deliver")
	for i := range 50 {
		mustf(t, c.Deliver(newNotice("fast", fmt.Sprint(i)), got.done(fmt.Sprint(i))), "deliver")
	}
	tags, outs := got.wait(t, 51)
	if tags[50] != "slow" {
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

// TestDeliverWindowAndQueue checks the in-flight window and the bounded
// queue.
func TestDeliverWindowAndQueue(t *testing.T) {
	fake := startFake(t, opensipstest.Options{ReplyDelay: 800 * time.Millisecond})
	obs := newObserver()
	c := openClient(t, fake.MISocket(), func(c *opensips.MIClient) { c.Window = 4; c.QueueSize = 3; c.Observer = obs })
	var got outcomes
	for i := range 4 {
		mustf(t, c.Deliver(newNotice("bob", fmt.Sprint(i)), got.done(fmt.Sprint(i))), "deliver")
		waitFor(t, "sent", func() bool { return len(fake.Deliveries()) == i+1 })
	}
	accepted, full := 4, 0
	for i := range 12 {
		switch err := c.Deliver(newNotice("bob", fmt.Sprint(4+i)), got.done(fmt.Sprint(4+i))); {
		case err == nil:
			accepted++
		case errors.Is(err, opensips.ErrQueueFull):
			full++
		default:
			t.Fatal(err)
		}
	}
	// 4 in flight, then 3 queued, plus the one the writer may already hold
	// while it waits for a slot.
	if accepted < 7 || accepted > 8 || full != 16-accepted {
		t.Fatalf("accepted %d, refused %d", accepted, full)
	}
	if obs.delivery("queue_full") != full {
		t.Fatalf("queue_full counted %d", obs.delivery("queue_full"))
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(fake.Deliveries()); n != 4 {
		t.Fatalf("%d requests in flight, window is 4", n)
	}
	got.wait(t, accepted)
	ctx := ctxTimeout(t, 5*time.Second)
	mustf(t, c.Drain(ctx), "drain")
	if len(fake.Deliveries()) != accepted || obs.delivery("2xx") != accepted {
		t.Fatalf("%d deliveries, %v", len(fake.Deliveries()), obs)
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

func TestDeliverTimeoutAndUnreachable(t *testing.T) {
	t.Run("no reply", func(t *testing.T) {
		addr, received := silentMI(t)
		obs := newObserver()
		c := openClient(t, addr, func(c *opensips.MIClient) { c.Timeout = 200 * time.Millisecond; c.Observer = obs })
		var got outcomes
		start := time.Now()
		mustf(t, c.Deliver(newNotice("bob", "x"), got.done("x")), "deliver")
		_, outs := got.wait(t, 1)
		if !errors.Is(outs[0].Err, opensips.ErrTimeout) || outs[0].Class() != "timeout" || time.Since(start) < 200*time.Millisecond {
			t.Fatalf("outcome %+v after %v", outs[0], time.Since(start))
		}
		if received() != 1 || obs.delivery("timeout") != 1 {
			t.Fatalf("received %d, counts %v", received(), obs)
		}
		_, err := c.Call(context.Background(), "which", nil)
		if !errors.Is(err, opensips.ErrTimeout) {
			t.Fatalf("Call: %v", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		obs := newObserver()
		c := openClient(t, closedPort(t), func(c *opensips.MIClient) { c.Timeout = 5 * time.Second; c.Observer = obs })
		var got outcomes
		start := time.Now()
		for i := range 20 {
			mustf(t, c.Deliver(newNotice("bob", fmt.Sprint(i)), got.done("x")), "deliver")
		}
		_, outs := got.wait(t, 20)
		for _, o := range outs {
			if !errors.Is(o.Err, opensips.ErrUnreachable) || o.Class() != "unreachable" {
				t.Fatalf("outcome %+v", o)
			}
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("unreachable took %v: sends must fail fast", d)
		}
		if obs.delivery("unreachable") != 20 {
			t.Fatalf("counts %v", obs)
		}
		if _, err := c.Call(context.Background(), "which", nil); !errors.Is(err, opensips.ErrUnreachable) && !errors.Is(err, opensips.ErrTimeout) {
			t.Fatalf("Call: %v", err)
		}
	})
	t.Run("unix socket missing", func(t *testing.T) {
		c := openClient(t, "unix:"+filepath.Join(t.TempDir(), "nope.sock"), nil)
		var got outcomes
		mustf(t, c.Deliver(newNotice("bob", "x"), got.done("x")), "deliver")
		_, outs := got.wait(t, 1)
		if outs[0].Class() != "unreachable" {
			t.Fatalf("outcome %+v", outs[0])
		}
	})
}

// TestDeliverUnix talks to a minimal mi_datagram on a unix socket, which
// answers from its own bound path as OpenSIPS does.
func TestDeliverUnix(t *testing.T) {
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
	var got outcomes
	mustf(t, c.Deliver(newNotice("bob", "x"), got.done("x")), "deliver")
	if _, outs := got.wait(t, 1); outs[0].Status != 200 {
		t.Fatalf("outcome %+v", outs[0])
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
	if err := c.Deliver(newNotice("bob", "x"), nil); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("Deliver before Open: %v", err)
	}
	mustf(t, c.Open(context.Background()), "open")
	var got outcomes
	mustf(t, c.Deliver(newNotice("silent", "x"), got.done("x")), "deliver")
	waitFor(t, "in flight", func() bool { return len(fake.Deliveries()) == 1 })
	if err := c.Drain(ctxTimeout(t, 50*time.Millisecond)); err == nil {
		t.Fatal("Drain returned with a request in flight")
	}
	mustf(t, c.Close(), "close")
	mustf(t, c.Close(), "second close")
	_, outs := got.wait(t, 1)
	if !errors.Is(outs[0].Err, opensips.ErrClosed) || outs[0].Class() != "aborted" {
		t.Fatalf("outcome after Close %+v", outs[0])
	}
	if err := c.Deliver(newNotice("bob", "x"), nil); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("Deliver after Close: %v", err)
	}
	if _, err := c.Call(context.Background(), "which", nil); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("Call after Close: %v", err)
	}
	bad := &imc.Notice{From: room, To: member("bob"), Body: "x", ContentType: "text/plain\r\nX: y"}
	c2 := openClient(t, fake.MISocket(), nil)
	if err := c2.Deliver(bad, nil); !errors.Is(err, opensips.ErrUnsafeHeader) {
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
