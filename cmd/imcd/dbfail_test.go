package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestDatabaseOutage: with MariaDB gone, commands are refused with a reply
// saying so and OpenSIPS's reliable-mode request gets a JSON-RPC error;
// chat in existing rooms keeps working; once the database is back the next
// command succeeds, without restarting imcd.
func TestDatabaseOutage(t *testing.T) {
	url := testdb.Need(t, testdb.MySQL)
	tables := testdb.NewTables(t, testdb.MySQL)
	proxy, err := dbproxy.Start(testdb.HostPort(url), dbproxy.Raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	rooms, members := tables.Rooms, tables.Members

	f := opensipstest.New(t, opensipstest.Options{Reliable: true})
	p := startIMCD(t, f, procOpts{extra: []string{
		"db_url = " + testdb.Through(url, proxy.Addr()),
		"rooms_table = " + rooms, "members_table = " + members, "create_tables = yes",
	}})
	ok := func(ev opensipstest.Event) {
		t.Helper()
		rs := f.Replies()
		if len(rs) == 0 || string(rs[len(rs)-1].Raw) != fmt.Sprintf(`{"jsonrpc":"2.0","result":"OK","id":%d}`, rs[len(rs)-1].ID) {
			t.Fatalf("%q: reliable reply %v, want OK", ev.Body, rs)
		}
	}
	r := room1
	ok(step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true}))
	ok(step(t, f, bob, r, r, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true}))

	proxy.Cut()
	start := time.Now()
	step(t, f, carol, r, r, "#join",
		want{to: carol, body: "The room service cannot save changes right now; please try again later", reply: true})
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("refusal took %s with the database down", took)
	}
	rs := f.Replies()
	if last := rs[len(rs)-1]; !strings.HasPrefix(string(last.Raw), `{"jsonrpc":"2.0","error":{"code":`) || !strings.Contains(string(last.Raw), fmt.Sprintf(`"id":%d}`, last.ID)) {
		t.Errorf("reliable reply with the database down: %s, want a JSON-RPC error", last.Raw)
	}
	// Chat never touches the database.
	ok(step(t, f, alice, r, r, "still here", want{to: bob, body: "<alice@127.0.0.1>: still here", ctype: "text/plain;charset=UTF-8"}))
	if code, body := p.get("/readyz"); code != 503 {
		t.Errorf("/readyz with the database down: %d %s", code, body)
	}
	// Memory was left as it was: carol is not a member.
	step(t, f, carol, r, r, "hello", want{to: carol, body: "You are not a member of " + r, reply: true})

	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := p.get("/readyz"); code != 200; code, _ = p.get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatal("not ready again after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ok(step(t, f, carol, r, r, "#join",
		want{to: alice, body: "*** <" + carol + "> has joined the room"}, want{to: bob, body: "*** <" + carol + "> has joined the room"},
		want{to: carol, body: "*** <" + carol + "> has joined the room", reply: true}))
	if v := p.metric(t, `opensips_imc_commands_total{command="join",result="db_error"}`); v != 1 {
		t.Errorf("db_error joins counted: %g, want 1", v)
	}
}
