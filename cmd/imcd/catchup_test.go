package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// Catch-up end to end (issue 14): the real binary with history on, a
// member away while more lines are said than member_queue keeps, imcd
// restarted meanwhile.

// TestCatchUpAfterRestart: bob got lines 0 and 1, then his MESSAGEs end
// 404 while alice says lines 2 to 11 (member_queue keeps 3); imcd stops
// and starts again; line 12 is said while bob is still away (nothing is
// sent to him); when he registers he gets a first line counting the 10
// lines he missed before line 12 and the newest catchup_max (5) of them,
// then line 12.
func TestCatchUpAfterRestart(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	opts := procOpts{dir: dir, extra: []string{"history = on", "history_on_join = 0", "catchup_max = 5", "member_queue = 3",
		"rate_limit = 0", "fanout_limit = 0", "usrloc_events = yes", "unreachable_retry = 1h", "unreachable_retry_max = 1h"}}
	start := func() *proc {
		p := startIMCD(t, f, opts)
		waitUsrlocSubscribed(t, f, p)
		return p
	}
	p := start()
	r := room1
	step(t, f, alice, "sip:chat-manager@127.0.0.1", r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, bob, r, r, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
	say := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := f.Raise(opensipstest.NewEvent(alice, r, "line "+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Reset()
	say(0, 2)
	waitUntil(t, "lines 0 and 1 to bob", 10*time.Second, func() bool { return len(f.BodiesTo(bob)) == 2 })
	f.SetStatus(bob, "404 Not Found")
	say(2, 12)
	waitUntil(t, "bob away, 3 lines kept", 20*time.Second, func() bool {
		return p.metric(t, "opensips_imc_members_unreachable") == 1 && p.metric(t, "opensips_imc_delivery_kept") == 3
	})
	if code := p.stop(); code != 0 {
		t.Fatalf("imcd exited %d", code)
	}

	p = start()
	f.Reset()
	say(12, 13)
	waitUntil(t, "line 12 kept for bob, still away", 10*time.Second, func() bool {
		return p.metric(t, "opensips_imc_delivery_kept") == 1 && p.metric(t, "opensips_imc_members_unreachable") == 1
	})
	if got := f.BodiesTo(bob); len(got) != 0 {
		t.Fatalf("bob, away before the restart, was sent %q", got)
	}
	f.ClearRules()
	if err := f.Register("bob@127.0.0.1", "sip:bob@192.0.2.2:5060", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "bob caught up", 20*time.Second, func() bool { return len(f.BodiesTo(bob)) >= 2 })
	time.Sleep(100 * time.Millisecond)
	got := f.BodiesTo(bob)
	stamp := regexp.MustCompile(`\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] `)
	head := "While you were unreachable, 10 lines were said in " + r + "; the first 5 are left out:"
	for i := 7; i < 12; i++ {
		head += "\n[t] alice@127.0.0.1: line " + strconv.Itoa(i)
	}
	want := []string{head, "<alice@127.0.0.1>: line 12"}
	if len(got) != len(want) || stamp.ReplaceAllString(got[0], "[t] ") != want[0] || got[1] != want[1] {
		t.Fatalf("bob got:\n%s\nwant:\n%s", strings.Join(got, "\n--\n"), strings.Join(want, "\n--\n"))
	}
	waitUntil(t, "delivery settled", 20*time.Second, func() bool {
		_, body := p.get("/metrics")
		return metricSum(body, "opensips_imc_delivery_queued") == 0 && metricSum(body, "opensips_imc_delivery_in_flight") == 0 &&
			metricSum(body, "opensips_imc_members_unreachable") == 0 &&
			metricSum(body, "opensips_imc_delivery_submitted_total") == metricSum(body, "opensips_imc_delivery_results_total") &&
			metricSum(body, "opensips_imc_delivery_missed_notices_total", `kind="delivered"`) == 1
	})
	_, body := p.get("/metrics")
	if read, failed, lines := metricSum(body, "opensips_imc_catchup_total", `result="read"`),
		metricSum(body, "opensips_imc_catchup_total", `result="failed"`), metricSum(body, "opensips_imc_catchup_lines_total"); read != 1 || failed != 0 || lines != 5 {
		t.Fatalf("catch-ups read %v, failed %v, lines %v; want 1, 0, 5", read, failed, lines)
	}
}
