package imc

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func historyRules() Config {
	cfg := nativeRules()
	cfg.History = true
	cfg.HistoryDefault, cfg.HistoryMax, cfg.HistoryOnJoin = 20, 50, 3
	return cfg
}

// TestHistoryOff: without History the engine records nothing and the two
// commands say the server keeps none.
func TestHistoryOff(t *testing.T) {
	w := newWorld(t, nativeRules())
	if res := w.handle("mike", "pub", "hello"); res.Record != nil || res.History != nil {
		t.Fatalf("history off, yet %+v", res)
	}
	eq(t, "#history", w.send("mike", "pub", "#history"), []string{"refused", "pub@h>mike@h re: This server keeps no history of the rooms"})
	eq(t, "#topic", w.send("alice", "pub", "#topic hi"), []string{"refused", "pub@h>alice@h re: This server keeps no room topics"})
	if strings.Contains(w.e.help, "#history") {
		t.Error("#help lists #history with history off")
	}
	cfg := historyRules()
	cfg.StartChar = '!'
	if h := NewEngine(cfg).help; !strings.Contains(h, "!history [<n>]") || !strings.Contains(h, "!topic [<text>]") {
		t.Errorf("#help with history on:\n%s", h)
	}
}

// TestChatRecord: a relayed chat line, and one into a room of one, are
// recorded as relayed (the "##" escape undone, the Content-Type kept).
func TestChatRecord(t *testing.T) {
	w := newWorld(t, historyRules())
	w.ct = "text/plain;charset=UTF-8"
	res := w.handle("mike", "pub", "##hash tag")
	want := Line{Room: uri(t, "pub"), Sender: uri(t, "mike"), ContentType: "text/plain;charset=UTF-8", Text: "#hash tag"}
	if res.Record == nil || *res.Record != want {
		t.Fatalf("record %+v, want %+v", res.Record, want)
	}
	w.handle("zed", "mgr", "#create solo")
	if res := w.handle("zed", "solo", "alone"); res.Record == nil || res.Record.Text != "alone" || len(res.Notices) != 0 {
		t.Fatalf("a line into a room of one: %+v", res)
	}
	for _, body := range []string{"#list", "  "} {
		if res := w.handle("mike", "pub", body); res.Record != nil {
			t.Errorf("%q recorded", body)
		}
	}
	if res := w.handle("zed", "pub", "intruder"); res.Record != nil {
		t.Error("a refused line was recorded")
	}
}

// TestHistoryCommand: members ask for the last n lines; the count defaults
// and is capped; strangers, invitees and the manager are refused.
func TestHistoryCommand(t *testing.T) {
	w := newWorld(t, historyRules())
	f := func(from, to, body string, want *HistoryQuery, refusal string) {
		t.Helper()
		res := w.handle(from, to, body)
		switch {
		case refusal != "":
			eq(t, body, render(res), []string{"refused", refusal})
		case res.History == nil || *res.History != *want || len(res.Notices) != 0:
			t.Errorf("%s %q: %+v, want query %+v", from, body, res, want)
		}
	}
	q := func(to string, n int) *HistoryQuery {
		return &HistoryQuery{Room: uri(t, "pub"), To: uri(t, to), Last: n, InReplyTo: cid, Purpose: HistoryAsked}
	}
	f("mike", "pub", "#history", q("mike", 20), "")
	f("adam", "pub", "#HISTORY 7", q("adam", 7), "")
	f("mike", "pub", "#history 500", q("mike", 50), "")
	f("mike", "pub", "#history x", nil, "pub@h>mike@h re: Usage: #history [<n>], n from 1 to 50")
	f("mike", "pub", "#history 0", nil, "pub@h>mike@h re: Usage: #history [<n>], n from 1 to 50")
	f("zed", "pub", "#history", nil, "pub@h>zed@h re: You are not a member of sip:pub@h")
	f("ivy", "pub", "#history", nil, "pub@h>ivy@h re: You are invited to sip:pub@h but have not joined yet: send '#accept' first")
	f("mike", "mgr", "#history", nil, "chat-manager@h>mike@h re: sip:chat-manager@h is the room manager, not a room: send '#history [<n>]' to the room itself")
}

// TestTopic: anyone may read a public room's topic, members a private
// one's; the owner and admins set it and the room is told; "-" clears it.
func TestTopic(t *testing.T) {
	w := newWorld(t, historyRules())
	eq(t, "none yet", w.send("zed", "pub", "#topic"), []string{"ok", "pub@h>zed@h re: No topic is set"})
	res := w.handle("adam", "pub", "#topic  Friday lunch: noon ")
	if res.Topic == nil || *res.Topic != (TopicChange{Room: uri(t, "pub"), Text: "Friday lunch: noon", SetBy: uri(t, "adam")}) {
		t.Fatalf("topic change %+v", res.Topic)
	}
	eq(t, "set", render(res), []string{"ok",
		"pub@h>alice@h: *** <sip:adam@h> set the topic: Friday lunch: noon",
		"pub@h>adam@h re: *** <sip:adam@h> set the topic: Friday lunch: noon",
		"pub@h>mike@h: *** <sip:adam@h> set the topic: Friday lunch: noon"})
	// The caller stores it and puts it in memory with its time.
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	w.rs.SetTopic(uri(t, "pub").Key(), Topic{Text: res.Topic.Text, SetBy: res.Topic.SetBy, At: at})
	eq(t, "read", w.send("zed", "pub", "#topic"), []string{"ok", "pub@h>zed@h re: Topic: Friday lunch: noon (set by sip:adam@h on 2026-11-29 12:00:00 UTC)"})
	eq(t, "member may not set", w.send("mike", "pub", "#topic mine"), []string{"refused", "pub@h>mike@h re: Only the owner and the admins of sip:pub@h may set its topic"})
	eq(t, "stranger may not set", w.send("zed", "pub", "#topic mine"), []string{"refused", "pub@h>zed@h re: You are not a member of sip:pub@h"})
	eq(t, "private room", w.send("zed", "priv", "#topic"), []string{"refused", "priv@h>zed@h re: You are not a member of sip:priv@h"})
	res = w.handle("alice", "pub", "#subject -")
	if res.Topic == nil || res.Topic.Text != "" || !strings.Contains(render(res)[1], "cleared the topic") {
		t.Fatalf("clear: %+v", render(res))
	}
	long := "#topic " + strings.Repeat("x", 1024)
	eq(t, "too long", w.send("alice", "pub", long), []string{"refused", "pub@h>alice@h re: Topic not set: it is longer than 1023 bytes"})
}

// TestJoinGetsTopicAndHistory: who joins, accepts or is added gets the
// topic and a query for the last lines, after "has joined".
func TestJoinGetsTopicAndHistory(t *testing.T) {
	w := newWorld(t, historyRules())
	w.rs.SetTopic(uri(t, "pub").Key(), Topic{Text: "welcome", SetBy: uri(t, "alice")})
	res := w.handle("zed", "pub", "#join")
	got := render(res)
	if last := got[len(got)-1]; last != "pub@h>zed@h re: Topic: welcome (set by sip:alice@h)" {
		t.Fatalf("last notice %q", last)
	}
	// Not a reply: the lines go in the room's flow, ahead of the next ones.
	if want := (HistoryQuery{Room: uri(t, "pub"), To: uri(t, "zed"), Last: 3, Purpose: HistoryOnJoin}); res.History == nil || *res.History != want {
		t.Fatalf("query %+v", res.History)
	}
	if res := w.handle("ivy", "pub", "#accept"); res.History == nil || res.History.To != uri(t, "ivy") {
		t.Fatalf("accept: %+v", res.History)
	}
	res = w.handle("alice", "pub", "#add bob")
	if res.History == nil || res.History.To != uri(t, "bob") || res.History.InReplyTo != "" {
		t.Fatalf("add: %+v", res.History)
	}
	cfg := historyRules()
	cfg.HistoryOnJoin = 0
	w = newWorld(t, cfg)
	if res := w.handle("zed", "pub", "#join"); res.History != nil {
		t.Fatal("history_on_join 0 still queries")
	}
	if res := w.handle("mike", "pub", "#join"); res.History != nil {
		t.Fatal("a refused join queries")
	}
}

// TestHistoryNotices: lines are shown with time and sender, after a first
// line, in as few MESSAGEs as MaxBody allows; an empty history says so.
func TestHistoryNotices(t *testing.T) {
	cfg := historyRules()
	cfg.MaxBody = 140
	e := NewEngine(cfg)
	room, mike := uri(t, "pub"), uri(t, "mike")
	at := time.Date(2026, 11, 29, 9, 5, 0, 0, time.FixedZone("CET", 3600))
	lines := []StoredLine{
		{Seq: 8, Sender: "sip:alice@h", At: at, ContentType: "text/plain", Body: "first"},
		{Seq: 9, Sender: "sip:adam@h", At: at.Add(time.Second), ContentType: "text/html", Body: "<b>bold</b>"},
		{Seq: 10, Sender: "sip:alice@h", At: at.Add(2 * time.Second), ContentType: "text/plain;charset=UTF-8", Body: strings.Repeat("y", 70)},
	}
	q := HistoryQuery{Room: room, To: mike, Last: 3, InReplyTo: cid, Purpose: HistoryAsked}
	var got []string
	for _, n := range e.HistoryNotices(q, lines, 12) {
		got = append(got, renderNotice(n))
	}
	eq(t, "asked", got, []string{
		"pub@h>mike@h re: The last 3 of 12 lines said in sip:pub@h:\n[2026-11-29 08:05:00] alice@h: first\n[2026-11-29 08:05:01] adam@h: (text/html) <b>bold</b>",
		"pub@h>mike@h re: [2026-11-29 08:05:02] alice@h: " + strings.Repeat("y", 70),
	})
	got = nil
	for _, n := range e.HistoryNotices(q, nil, 0) {
		got = append(got, renderNotice(n))
	}
	eq(t, "empty", got, []string{"pub@h>mike@h re: Nothing has been said in sip:pub@h yet"})
	if ns := e.HistoryNotices(HistoryQuery{Room: room, To: mike, Purpose: HistoryOnJoin}, nil, 0); ns != nil {
		t.Fatalf("join with no history: %v", ns)
	}
	q = HistoryQuery{Room: room, To: mike, Last: 1, After: 7, Purpose: HistoryCatchUp}
	got = nil
	var seqs []int64
	for _, n := range e.HistoryNotices(q, lines[2:], 3) {
		got = append(got, renderNotice(n))
		seqs = append(seqs, n.Seq)
	}
	eq(t, "catch-up", got, []string{
		"pub@h>mike@h: While you were unreachable, 3 lines were said in sip:pub@h; the first 2 are left out:",
		"pub@h>mike@h: [2026-11-29 08:05:02] alice@h: " + strings.Repeat("y", 70),
	})
	// Each catch-up notice carries the number of its newest line (none for
	// the header alone); other purposes carry none.
	if !slices.Equal(seqs, []int64{0, 10}) {
		t.Fatalf("catch-up seqs %v, want [0 10]", seqs)
	}
	seqs = nil
	for _, n := range e.HistoryNotices(HistoryQuery{Room: room, To: mike, Purpose: HistoryCatchUp}, lines[:2], 2) {
		seqs = append(seqs, n.Seq)
	}
	if !slices.Equal(seqs, []int64{8, 9}) {
		t.Fatalf("catch-up seqs %v, want [8 9]", seqs)
	}
	for _, n := range e.HistoryNotices(HistoryQuery{Room: room, To: mike, Purpose: HistoryAsked}, lines, 3) {
		if n.Seq != 0 {
			t.Fatalf("#history notice with seq %d", n.Seq)
		}
	}
	if q := e.CatchUpQuery(room, mike, 7); q != (HistoryQuery{Room: room, To: mike, Last: 50, After: 7, Purpose: HistoryCatchUp}) {
		t.Fatalf("CatchUpQuery: %+v", q)
	}
}

// TestInviteeReadsAsStranger: in a private room a pending invitee gets what
// a stranger gets from every command that reads the room: no topic, no
// lines, no members, not even their number, only the request to accept
// first (issue 19: #topic showed ivy the topic). In a public room, where
// strangers read the topic, so does an invitee.
func TestInviteeReadsAsStranger(t *testing.T) {
	w := newWorld(t, historyRules())
	w.rs.SetTopic(uri(t, "priv").Key(), Topic{Text: "the secret plan", SetBy: uri(t, "alice")})
	w.rs.SetTopic(uri(t, "pub").Key(), Topic{Text: "lunch", SetBy: uri(t, "alice")})
	accept := "priv@h>ivy@h re: You are invited to sip:priv@h but have not joined yet: send '#accept' first"
	for _, c := range []struct{ body, want string }{
		{"#topic", accept},
		{"#subject", accept},
		{"#history", accept},
		{"#history 5", accept},
		{"#list", accept},
		{"#members", accept},
		{"#topic now mine", "priv@h>ivy@h re: You are not a member of sip:priv@h"},
		{"hello?", "priv@h>ivy@h re: You are invited to sip:priv@h but have not joined yet: send '#accept' first"},
	} {
		res := w.handle("ivy", "priv", c.body)
		if res.History != nil || res.Topic != nil || res.Record != nil {
			t.Errorf("%q: the invitee got a query or a change: %+v", c.body, res)
		}
		eq(t, c.body, render(res), []string{"refused", c.want})
		// A stranger is refused the same, in the words for strangers.
		if r := w.handle("zed", "priv", c.body); r.Outcome != Refused || r.History != nil || strings.Contains(render(r)[1], "secret") {
			t.Errorf("%q: a stranger got %v", c.body, render(r))
		}
	}
	eq(t, "#rooms", w.send("ivy", "mgr", "#rooms"), []string{"ok",
		"chat-manager@h>ivy@h re: Rooms:\nsip:priv@h (private, invited)\nsip:pub@h (3 members, invited)"})
	eq(t, "public #topic", w.send("ivy", "pub", "#topic"), []string{"ok", "pub@h>ivy@h re: Topic: lunch (set by sip:alice@h)"})
	// Once accepted, the invitee is a member and reads the room.
	w.handle("ivy", "priv", "#accept")
	eq(t, "member #topic", w.send("ivy", "priv", "#topic"), []string{"ok", "priv@h>ivy@h re: Topic: the secret plan (set by sip:alice@h)"})
}
