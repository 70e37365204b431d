package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// openLogged is openDaemon with the log kept for the test to read.
func openLogged(t *testing.T, f *opensipstest.Server, cfg config.Config) (*Daemon, *imcdproc.LogBuffer) {
	t.Helper()
	log := new(imcdproc.LogBuffer)
	t.Cleanup(func() { // after the daemon's Close
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	return openWith(t, f, cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))), log
}

// TestFanoutBudget: what a sender's lines cost is the MESSAGEs they make
// imcd send; once the budget is spent the sender is told once and the rest
// is dropped, while the others go on.
func TestFanoutBudget(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.RateLimit = 0       // only the fan-out counts here
	cfg.FanoutLimit = 0.001 // no refill within the test
	cfg.FanoutBurst = 5
	openDaemon(t, f, cfg)
	aliceAndBob(t, f) // alice's #create cost her 1
	send(t, f, carol, room1, "#join", 3)
	send(t, f, alice, room1, "one", 2) // 2 left
	send(t, f, alice, room1, "two", 2) // none left
	same(t, "over budget", send(t, f, alice, room1, "three", 1), alice+": "+imc.TxtRateLimited)
	// Told once: the next lines are dropped without a word, bob's go on.
	f.Reset()
	raiseLines(t, f, alice, 3)
	if _, err := f.Raise(opensipstest.NewEvent(bob, room1, "bob is not limited")); err != nil {
		t.Fatal(err)
	}
	ds, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "bob's line", lines(ds), alice+": <bob@example.com>: bob is not limited", carol+": <bob@example.com>: bob is not limited")
	quiet(t, f, 2)
}

// TestPolicyAtLoad: a room created before the room policy existed is
// loaded, logged once and served; a new one like it is refused.
func TestPolicyAtLoad(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	cfg := testConfig(t, f, dir)
	cfg.RoomPrefix = ""
	d := openDaemon(t, f, cfg)
	send(t, f, alice, manager, "#create team", 1)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	f.Reset()
	_, log := openLogged(t, f, testConfig(t, f, dir))
	if n := strings.Count(log.String(), "rooms outside the room policy"); n != 1 ||
		!strings.Contains(log.String(), `rooms=1 room="sip:team@example.com (name does not start with \"chat-\")"`) {
		t.Errorf("log about the stored room:\n%s", log.String())
	}
	same(t, "join the stored room", send(t, f, bob, "sip:team@example.com", "#join", 2),
		alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
	same(t, "create another", send(t, f, bob, manager, "#create team2", 1),
		bob+": Room sip:team2@example.com not created: room names here start with 'chat-', as in '#create chat-team'")
}

// TestMIPassthroughPolicy: the daemon's MI forwards what mi_passthrough
// lets through, and warns when the old "yes" is read as the allowlist.
func TestMIPassthroughPolicy(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.MIPassthrough = config.PassthroughYes
	d, log := openLogged(t, f, cfg)
	if !strings.Contains(log.String(), "mi_passthrough = yes now means allowlist") {
		t.Errorf("no warning about mi_passthrough = yes:\n%s", log.String())
	}
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"core:kill","id":1}`); !strings.Contains(got, `"code":403`) {
		t.Errorf("core:kill: %s", got)
	}
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"evi:subscribers","id":2}`); !strings.Contains(got, `"result"`) {
		t.Errorf("evi:subscribers: %s", got)
	}
	if n := len(f.CallsTo("core:kill")); n != 0 {
		t.Errorf("core:kill reached OpenSIPS %d times", n)
	}
	if n := len(f.CallsTo("evi:subscribers")); n != 1 {
		t.Errorf("evi:subscribers reached OpenSIPS %d times", n)
	}
}

// TestFIFOInDataDir: a relative mi_fifo lands in data_dir with 0600.
func TestFIFOInDataDir(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	dir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(t, f, dir)
	cfg.MIFIFO = config.Default().MIFIFO
	d := openDaemon(t, f, cfg)
	if want := filepath.Join(dir, "imcd_fifo"); d.Addrs().MIFIFO != want {
		t.Errorf("FIFO at %q, want %q", d.Addrs().MIFIFO, want)
	}
	fi, err := os.Stat(d.Addrs().MIFIFO)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("FIFO %v %v", fi, err)
	}
}
