package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// History end to end (issue 14): the real binary on each engine keeps the
// history and the topic across a restart, purges beyond its limits at
// start, and gives a new member the topic and the last lines.

// historyLines are the configuration of a history test on engine: the
// embedded SQLite file in the data dir, or tables of the test's own on the
// server.
func historyLines(t *testing.T, engine string) []string {
	lines := []string{"history = on", "history_on_join = 2", "history_keep_lines = 3", "rate_limit = 0", "fanout_limit = 0"}
	if engine == testdb.SQLite {
		return lines
	}
	tables := testdb.NewTables(t, engine, "imc_history", "imc_topics", "imc_history_marks")
	return append(lines, "db_url = "+testdb.Need(t, engine), "create_tables = yes",
		"rooms_table = "+tables.Rooms, "members_table = "+tables.Members,
		"history_table = "+tables.Extra[0], "topics_table = "+tables.Extra[1], "history_marks_table = "+tables.Extra[2])
}

func joined(u string) string { return "*** <" + u + "> has joined the room" }

// timeStamps are the times history lines carry; the test compares without.
var timeStamps = regexp.MustCompile(`\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] `)

// exchange raises body from "from" to ruri, waits for n MESSAGEs and
// returns them as "to: body", sorted, time stamps replaced by "[t] ".
func exchange(t *testing.T, f *opensipstest.Server, from, ruri, body string, n int) []string {
	t.Helper()
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(from, ruri, body)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, n); err != nil {
		t.Fatalf("%q: waiting for %d MESSAGEs: %v (got %q)", body, n, err, summarize(f.Deliveries()))
	}
	time.Sleep(50 * time.Millisecond) // anything extra would show up now
	var got []string
	for _, d := range f.Deliveries() {
		got = append(got, d.To+": "+timeStamps.ReplaceAllString(d.Body, "[t] "))
	}
	slices.Sort(got)
	return got
}

// TestHistoryOnEveryEngine: five lines and a topic; imcd restarts, which
// purges the history down to history_keep_lines (3); #history, #topic,
// a new member's join and MI imc:history then read what is left.
func TestHistoryOnEveryEngine(t *testing.T) {
	for _, engine := range []string{testdb.SQLite, testdb.MySQL, testdb.Postgres} {
		t.Run(engine, func(t *testing.T) {
			f := opensipstest.New(t, opensipstest.Options{})
			opts := procOpts{dir: t.TempDir(), extra: historyLines(t, engine)}
			p := startIMCD(t, f, opts)
			r := room1
			step(t, f, alice, "sip:chat-manager@127.0.0.1", r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
			step(t, f, bob, r, r, "#join", want{to: alice, body: joined(bob)}, want{to: bob, body: joined(bob), reply: true})
			for _, l := range []string{"one", "two", "three", "four", "caf\xe9 latin-1"} {
				exchange(t, f, alice, r, l, 1)
			}
			topic := "*** <" + alice + "> set the topic: lunch at noon"
			if got := exchange(t, f, alice, r, "#topic lunch at noon", 2); !slices.Equal(got, []string{alice + ": " + topic, bob + ": " + topic}) {
				t.Fatalf("#topic: %q", got)
			}
			if code := p.stop(); code != 0 {
				t.Fatalf("imcd exited %d", code)
			}

			p = startIMCD(t, f, opts)
			waitUntil(t, "the purge at start", 10*time.Second, func() bool { return p.metric(t, "opensips_imc_history_lines_purged_total") == 2 })
			if got := exchange(t, f, bob, r, "#history 10", 1); !slices.Equal(got, []string{bob + ": The 3 lines said in " + r + ":\n" +
				"[t] alice@127.0.0.1: three\n[t] alice@127.0.0.1: four\n[t] alice@127.0.0.1: caf\xe9 latin-1"}) {
				t.Fatalf("#history after the restart and purge: %q", got)
			}
			if got := exchange(t, f, bob, r, "#topic", 1); len(got) != 1 || !strings.HasPrefix(got[0], bob+": Topic: lunch at noon (set by "+alice+" on ") {
				t.Fatalf("#topic after the restart: %q", got)
			}
			got := exchange(t, f, carol, r, "#join", 5)
			wantJoin := []string{alice + ": " + joined(carol), bob + ": " + joined(carol), carol + ": " + joined(carol),
				carol + ": What was said before you joined (the last 2 of 3 lines):\n[t] alice@127.0.0.1: four\n[t] alice@127.0.0.1: caf\xe9 latin-1"}
			var topicLine string
			got = slices.DeleteFunc(got, func(g string) bool {
				if strings.HasPrefix(g, carol+": Topic: ") {
					topicLine = g
					return true
				}
				return false
			})
			slices.Sort(wantJoin)
			if !slices.Equal(got, wantJoin) || !strings.HasPrefix(topicLine, carol+": Topic: lunch at noon (set by "+alice) {
				t.Fatalf("carol's join:\n%q\ntopic %q\nwant:\n%q", got, topicLine, wantJoin)
			}
			// An operator reads the same, the body byte for byte.
			reply := p.mi(t, `{"jsonrpc":"2.0","method":"imc:history","params":{"room":"`+r+`","lines":"1"},"id":1}`)
			if !strings.HasPrefix(reply, `{"jsonrpc":"2.0","result":{"ROOM":"`+r+`","TOTAL":3,"LINES":[{"SEQ":5,"TIME":"`) ||
				!strings.HasSuffix(reply, `"SENDER":"`+alice+`","CONTENT_TYPE":"text/plain","BODY":"caf`+"\xe9"+` latin-1"}]},"id":1}`) {
				t.Fatalf("imc:history: %s", reply)
			}
		})
	}
}
