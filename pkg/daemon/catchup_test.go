package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// Catch-up from the history: a member away while more lines are said
// than member_queue keeps gets, when back, the lines dropped for them from
// the history, then what was kept, in order, each line once; across a
// restart too.

// catchUpConfig is historyConfig with a small member_queue, usrloc events
// to bring members back, and no probes within a test.
func catchUpConfig(t *testing.T, f *opensipstest.Server, engine, dir string, tables testdb.Tables, catchUpMax int) config.Config {
	cfg := historyConfig(t, f, engine, dir, tables)
	cfg.MemberQueue, cfg.CatchUpMax = 3, catchUpMax
	cfg.UsrlocEvents = true
	cfg.UnreachableRetry, cfg.UnreachableRetryMax = time.Hour, time.Hour
	return cfg
}

// openWithUsrloc opens the daemon and waits for the usrloc subscriptions.
func openWithUsrloc(t *testing.T, f *opensipstest.Server, cfg config.Config) *Daemon {
	t.Helper()
	d := openDaemon(t, f, cfg)
	for _, ev := range opensips.ReachabilityEventNames() {
		if err := f.WaitSubscribed(ctxTimeout(t, 5*time.Second), ev, d.Addrs().Events); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// bobAway makes bob's MESSAGEs end 404 and has alice say lines from..to-1
// (bob got the ones before): member_queue keeps the last 3 for him.
func bobAway(t *testing.T, f *opensipstest.Server, d *Daemon, from, to int) {
	t.Helper()
	f.SetStatus(bob, "404 Not Found")
	for i := from; i < to; i++ {
		if _, err := f.Raise(opensipstest.NewEvent(alice, room1, "line "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "bob away, 3 lines kept", func() bool {
		st := d.sched.MemberStatus(mustURI(t, room1), []imc.URI{mustURI(t, bob)})[0]
		return !st.Reachable && st.Kept == 3 && st.Dropped == to-from-3
	})
}

// marksOf returns room1's stored marks as "member seq".
func marksOf(t *testing.T, d *Daemon) []string {
	t.Helper()
	ms, err := d.hist.Marks(context.Background(), mustURI(t, room1))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s %d", m.Member, m.Seq))
	}
	return out
}

func mustURI(t *testing.T, s string) imc.URI {
	t.Helper()
	u, err := imc.ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// bobBack registers bob again (a usrloc event) and waits for n MESSAGEs
// to him.
func bobBack(t *testing.T, f *opensipstest.Server, n int) []string {
	t.Helper()
	f.ClearRules()
	f.Reset()
	if err := f.Register("bob@example.com", "sip:bob@192.0.2.2:5060", time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, fmt.Sprintf("%d MESSAGEs to bob", n), func() bool { return len(f.BodiesTo(bob)) >= n })
	quiet(t, f, len(f.Deliveries()))
	return unstamped(f.BodiesTo(bob))
}

// catchUpText is what the catch-up of lines from..to-1 shows when the
// last n are given.
func catchUpText(from, to, n int) string {
	total := to - from
	s := "While you were unreachable, " + strconv.Itoa(total) + " lines were said in " + room1
	if total > n {
		s += "; the first " + strconv.Itoa(total-n) + " are left out"
		from = to - n
	}
	s += ":"
	for i := from; i < to; i++ {
		s += "\n[t] alice@example.com: line " + strconv.Itoa(i)
	}
	return s
}

func chatLines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, "<alice@example.com>: line "+strconv.Itoa(i))
	}
	return out
}

// TestCatchUpFromHistory: bob got lines 0 and 1, then was away for lines
// 2 to 11; member_queue kept 9 to 11 and dropped 2 to 8. His mark (line 1,
// seq 2) is stored when he goes away; when he registers again he gets the
// newest catchup_max (4) of the dropped lines, after a first line counting
// them all, then 9 to 11, and his mark is deleted. On every engine.
func TestCatchUpFromHistory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := opensipstest.New(t, opensipstest.Options{})
		d := openWithUsrloc(t, f, catchUpConfig(t, f, engine, t.TempDir(), newTables(t, engine), 4))
		aliceAndBob(t, f)
		raiseLines(t, f, alice, 2)
		eventually(t, "lines 0 and 1 to bob", func() bool { return len(f.BodiesTo(bob)) == 2 })
		bobAway(t, f, d, 2, 12)
		eventually(t, "bob's mark stored", func() bool { return strings.Join(marksOf(t, d), ",") == bob+" 2" })

		got := bobBack(t, f, 4)
		want := append([]string{catchUpText(2, 9, 4)}, chatLines(9, 12)...)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("bob got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		eventually(t, "bob's mark deleted", func() bool { return len(marksOf(t, d)) == 0 })
		settled(t, d)
		if v := readCounterSum(d.metrics.Registry, "opensips_imc_delivery_missed_notices_total", "kind", "delivered"); v != 1 {
			t.Fatalf("%g catch-up notices delivered, want 1", v)
		}
	})
}

// TestCatchUpAcrossRestart: bob is away when imcd stops (what was kept for
// him ends aborted); after the restart he is still away (a line said then
// waits), and when he registers he gets every line he missed, from the
// history, then the new one: lines 0 to 12 once each, in order. On every
// engine.
func TestCatchUpAcrossRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := opensipstest.New(t, opensipstest.Options{})
		dir, tables := t.TempDir(), newTables(t, engine)
		d := openWithUsrloc(t, f, catchUpConfig(t, f, engine, dir, tables, 50))
		aliceAndBob(t, f)
		raiseLines(t, f, alice, 2)
		eventually(t, "lines 0 and 1 to bob", func() bool { return len(f.BodiesTo(bob)) == 2 })
		before := f.BodiesTo(bob)
		bobAway(t, f, d, 2, 12)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}

		d = openWithUsrloc(t, f, catchUpConfig(t, f, engine, dir, tables, 50))
		if st := d.sched.MemberStatus(mustURI(t, room1), []imc.URI{mustURI(t, bob)})[0]; st.Reachable {
			t.Fatal("bob reachable after the restart")
		}
		f.Reset()
		send(t, f, alice, room1, "line 12", 0)
		if _, err := f.Raise(opensipstest.NewEvent(carol, room1, "#join")); err != nil { // a MESSAGE that waits for bob too
			t.Fatal(err)
		}
		eventually(t, "carol's join", func() bool { return len(f.BodiesTo(carol)) >= 1 })
		if got := f.BodiesTo(bob); len(got) != 0 {
			t.Fatalf("bob, away before the restart, was sent %q", got)
		}
		got := bobBack(t, f, 3)
		want := []string{catchUpText(2, 12, 50), "<alice@example.com>: line 12", "*** <" + carol + "> has joined the room"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("bob got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// Before and after: every line once, in order.
		var all []string
		for _, b := range append(before, got...) {
			for l := range strings.Lines(b) {
				if _, n, ok := strings.Cut(l, "line "); ok {
					all = append(all, strings.TrimSpace(n))
				}
			}
		}
		if s := strings.Join(all, ","); s != "0,1,2,3,4,5,6,7,8,9,10,11,12" {
			t.Fatalf("bob's lines: %s", s)
		}
		eventually(t, "bob's mark deleted", func() bool { return len(marksOf(t, d)) == 0 })
		settled(t, d)
	})
}

// TestCatchUpOff: with catchup_max 0 a member back from being away is told
// how many messages they missed, as without history; nothing is stored.
func TestCatchUpOff(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	d := openWithUsrloc(t, f, catchUpConfig(t, f, testdb.SQLite, t.TempDir(), testdb.Tables{}, 0))
	aliceAndBob(t, f)
	bobAway(t, f, d, 0, 5)
	got := bobBack(t, f, 4)
	want := append([]string{"*** you missed 2 messages in this room while you could not be reached"}, chatLines(2, 5)...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("bob got %q, want %q", got, want)
	}
	if m := marksOf(t, d); len(m) != 0 {
		t.Fatalf("marks stored with catchup_max 0: %v", m)
	}
}
