package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// Moderation end to end (issue 23): bans, a moderated room and voice, made
// by users and by the operator, survive a restart of the real binary on
// every engine, and in RabbitMQ mode a ban made through one instance holds
// on the instance that serves the room next.

const troll = "sip:troll@127.0.0.1"

// moderationLines are the configuration of a moderation test on engine:
// the embedded SQLite file in the data dir, or tables of the test's own on
// the server (bans and moderation among them).
func moderationLines(t *testing.T, engine string) []string {
	lines := []string{"rate_limit = 0", "fanout_limit = 0"}
	if engine == testdb.SQLite {
		return lines
	}
	tables := testdb.NewTables(t, engine, "imc_bans", "imc_moderation")
	return append(lines, "db_url = "+testdb.Need(t, engine), "create_tables = yes",
		"rooms_table = "+tables.Rooms, "members_table = "+tables.Members,
		"bans_table = "+tables.Extra[0], "moderation_table = "+tables.Extra[1])
}

// TestModerationSurvivesRestart: alice bans dave with a reason, the
// operator bans a troll who never joined, alice moderates the room and
// gives carol voice; after a restart dave and the troll are still kept out,
// bob still may not speak and carol may, #bans and imc:bans list both bans;
// an unban then lets dave in again.
func TestModerationSurvivesRestart(t *testing.T) {
	for _, engine := range []string{testdb.SQLite, testdb.MySQL, testdb.Postgres} {
		t.Run(engine, func(t *testing.T) {
			f := opensipstest.New(t, opensipstest.Options{})
			opts := procOpts{dir: t.TempDir(), extra: moderationLines(t, engine)}
			p := startIMCD(t, f, opts)
			r := room1
			step(t, f, alice, "sip:chat-manager@127.0.0.1", r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
			step(t, f, bob, r, r, "#join", want{to: alice, body: joined(bob)}, want{to: bob, body: joined(bob), reply: true})
			step(t, f, carol, r, r, "#join", want{to: alice, body: joined(carol)}, want{to: bob, body: joined(carol)},
				want{to: carol, body: joined(carol), reply: true})
			step(t, f, dave, r, r, "#join", want{to: alice, body: joined(dave)}, want{to: bob, body: joined(dave)},
				want{to: carol, body: joined(dave)}, want{to: dave, body: joined(dave), reply: true})

			banned := "*** <" + dave + "> has been banned (reason: spamming links)"
			step(t, f, alice, r, r, "#ban dave spamming links",
				want{to: dave, body: "You have been banned from this room (reason: spamming links)"},
				want{to: alice, body: banned, reply: true}, want{to: bob, body: banned}, want{to: carol, body: banned})
			f.Reset()
			if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc:ban","params":{"room":"`+r+`","user":"`+troll+`","reason":"known troll"},"id":1}`); got !=
				`{"jsonrpc":"2.0","result":"OK","id":1}` {
				t.Fatalf("imc:ban: %s", got)
			}
			trollBanned := "*** <" + troll + "> has been banned (reason: known troll)"
			waitNotices(t, f, alice+": "+trollBanned, bob+": "+trollBanned, carol+": "+trollBanned)
			moderated := "*** <" + alice + "> made the room moderated: only the owner, admins and members with voice may speak"
			step(t, f, alice, r, r, "#moderate on", want{to: alice, body: moderated, reply: true}, want{to: bob, body: moderated},
				want{to: carol, body: moderated})
			voiced := "*** <" + carol + "> has been given voice"
			step(t, f, alice, r, r, "#voice carol", want{to: alice, body: voiced, reply: true}, want{to: bob, body: voiced},
				want{to: carol, body: voiced})
			if code := p.stop(); code != 0 {
				t.Fatalf("imcd exited %d", code)
			}

			p = startIMCD(t, f, opts)
			step(t, f, dave, r, r, "#join", want{to: dave, body: "You are banned from " + r + " (reason: spamming links)", reply: true})
			step(t, f, troll, r, r, "hello?", want{to: troll, body: "You are banned from " + r + " (reason: known troll)", reply: true})
			step(t, f, bob, r, r, "may I speak?", want{to: bob, reply: true,
				body: "Room " + r + " is moderated: only the owner, admins and members with voice may speak; your message was not sent"})
			step(t, f, carol, r, r, "I may", want{to: alice, body: "<carol@127.0.0.1>: I may", ctype: "text/plain;charset=UTF-8"},
				want{to: bob, body: "<carol@127.0.0.1>: I may", ctype: "text/plain;charset=UTF-8"})
			step(t, f, bob, r, r, "#list", want{to: bob, reply: true, body: "Members:\n*" + alice + "\n+" + carol + "\n" + bob})
			step(t, f, alice, r, r, "#bans", want{to: alice, reply: true, body: "Banned from " + r + " (2 users):\n" +
				dave + " (by " + alice + "): spamming links\n" + troll + " (by the operator): known troll"})
			if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc:bans","params":["`+r+`"],"id":2}`); got !=
				`{"jsonrpc":"2.0","result":{"ROOM":"`+r+`","BANS":[{"USER":"`+dave+`","BY":"`+alice+`","REASON":"spamming links"},`+
					`{"USER":"`+troll+`","BY":"","REASON":"known troll"}],"NO_BANS":2},"id":2}` {
				t.Errorf("imc:bans after the restart: %s", got)
			}
			// Still banned, so not a member: the native module's listing
			// agrees.
			if got := p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_members","params":["`+r+`"],"id":3}`); got !=
				`{"jsonrpc":"2.0","result":{"ROOM":"`+r+`","MEMBERS":["`+alice+`","`+bob+`","`+carol+`"],"NO_MEMBERS":3},"id":3}` {
				t.Errorf("imc_list_members: %s", got)
			}

			unbanned := "*** <" + dave + "> is no longer banned"
			step(t, f, alice, r, r, "#unban dave", want{to: alice, body: unbanned, reply: true}, want{to: bob, body: unbanned},
				want{to: carol, body: unbanned})
			step(t, f, dave, r, r, "#join", want{to: alice, body: joined(dave)}, want{to: bob, body: joined(dave)},
				want{to: carol, body: joined(dave)}, want{to: dave, body: joined(dave), reply: true})
		})
	}
}

// waitNotices waits for exactly the MESSAGEs want ("to: body", any order)
// since the last Reset.
func waitNotices(t *testing.T, f *opensipstest.Server, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, len(want)); err != nil {
		t.Fatalf("waiting for %d MESSAGEs: %v (got %q)", len(want), err, summarize(f.Deliveries()))
	}
	time.Sleep(50 * time.Millisecond) // anything extra would show up now
	got := summarize(f.Deliveries())
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("MESSAGEs:\n got %q\nwant %q", got, want)
	}
}

// TestRabbitMQBanHolds: two imcd on one queue and one database, the first
// active, the second standing by. Through the first, alice bans dave,
// moderates the room and gives carol voice; through the second (which
// does not serve the room) the operator bans a troll. The first stops;
// the second takes the queue over, reads the room afresh, and keeps dave
// and the troll out, bob silent and carol speaking.
func TestRabbitMQBanHolds(t *testing.T) {
	url := testbroker.URL(t)
	dbURL := testdb.Need(t, testdb.MySQL)
	tables := testdb.NewTables(t, testdb.MySQL, "imc_events", "imc_bans", "imc_moderation")
	dbLines := []string{"db_url = " + dbURL, "rooms_table = " + tables.Rooms, "members_table = " + tables.Members,
		"events_table = " + tables.Extra[0], "bans_table = " + tables.Extra[1], "moderation_table = " + tables.Extra[2],
		"create_tables = yes"}
	r := feed.New(t, url, 1, true)
	f := opensipstest.New(t, opensipstest.Options{})
	first := startIMCD(t, f, procOpts{extra: rabbitLines(r, dbLines...)})
	second := startIMCD(t, f, procOpts{extra: rabbitLines(r, dbLines...)})
	room := room1
	send := func(from, ruri, body string, want ...string) {
		t.Helper()
		f.Reset()
		if err := r.Publish(feed.Event(opensipstest.NewEvent(from, ruri, body))); err != nil {
			t.Fatal(err)
		}
		waitNotices(t, f, want...)
	}
	send(alice, "sip:chat-manager@127.0.0.1", "#create chat-1", alice+": *** room was created")
	send(bob, room, "#join", alice+": "+joined(bob), bob+": "+joined(bob))
	send(carol, room, "#join", alice+": "+joined(carol), bob+": "+joined(carol), carol+": "+joined(carol))
	send(dave, room, "#join", alice+": "+joined(dave), bob+": "+joined(dave), carol+": "+joined(dave), dave+": "+joined(dave))
	banned := "*** <" + dave + "> has been banned (reason: flooding)"
	send(alice, room, "#ban dave flooding", dave+": You have been banned from this room (reason: flooding)",
		alice+": "+banned, bob+": "+banned, carol+": "+banned)
	moderated := "*** <" + alice + "> made the room moderated: only the owner, admins and members with voice may speak"
	send(alice, room, "#moderate on", alice+": "+moderated, bob+": "+moderated, carol+": "+moderated)
	voiced := "*** <" + carol + "> has been given voice"
	send(alice, room, "#voice carol", alice+": "+voiced, bob+": "+voiced, carol+": "+voiced)
	if delivered(first) == 0 || delivered(second) != 0 {
		t.Fatalf("the first instance should be the active one: it took %v messages, the second %v", delivered(first), delivered(second))
	}

	// The operator bans through the instance that does not serve the
	// room: it reads the room first, then commits.
	f.Reset()
	if got := second.mi(t, `{"jsonrpc":"2.0","method":"imc:ban","params":{"room":"`+room+`","user":"`+troll+`"},"id":1}`); got !=
		`{"jsonrpc":"2.0","result":"OK","id":1}` {
		t.Fatalf("imc:ban through the standby: %s", got)
	}
	trollBanned := "*** <" + troll + "> has been banned"
	waitNotices(t, f, alice+": "+trollBanned, bob+": "+trollBanned, carol+": "+trollBanned)

	if code := first.stop(); code != 0 {
		t.Fatalf("the first imcd exited %d", code)
	}
	// The second takes the queue over and reads chat-1 before serving it.
	send(dave, room, "#join", dave+": You are banned from "+room+" (reason: flooding)")
	if delivered(second) == 0 {
		t.Fatal("the second instance did not take the queue over")
	}
	send(troll, room, "#join", troll+": You are banned from "+room)
	send(bob, room, "anyone?", bob+": Room "+room+" is moderated: only the owner, admins and members with voice may speak; your message was not sent")
	send(carol, room, "I may", alice+": <carol@127.0.0.1>: I may", bob+": <carol@127.0.0.1>: I may")
	if n := second.metric(t, `opensips_imc_rabbitmq_room_rereads_total{result="ok"}`); n == 0 {
		t.Errorf("the second instance re-read no room")
	}
}

// TestModerationInDoubt: the connection to MariaDB dies right before the
// COMMIT of a moderation change reaches it (nothing landed) or right after
// MariaDB committed it (it landed). imcd re-reads the room and tells alice
// what really happened, judging by the room's moderation as well as its
// members: "#moderate on" and "#unban" change no member row, so a
// comparison of members alone would take a lost change for a landed one.
func TestModerationInDoubt(t *testing.T) {
	url := testdb.Need(t, testdb.MySQL)
	const unavailable = "The room service cannot save changes right now; please try again later"
	moderated := "*** <" + alice + "> made the room moderated: only the owner, admins and members with voice may speak"
	unbanned := "*** <" + dave + "> is no longer banned"
	notModerated := "<bob@127.0.0.1>: still free"
	for _, cut := range []dbproxy.Commit{dbproxy.BeforeCommit, dbproxy.AfterCommit} {
		t.Run(cut.String(), func(t *testing.T) {
			tables := testdb.NewTables(t, testdb.MySQL, "imc_bans", "imc_moderation")
			proxy, err := dbproxy.Start(testdb.HostPort(url), dbproxy.MySQL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(proxy.Close)
			f := opensipstest.New(t, opensipstest.Options{})
			startIMCD(t, f, procOpts{extra: []string{"db_url = " + testdb.Through(url, proxy.Addr()), "create_tables = yes",
				"rooms_table = " + tables.Rooms, "members_table = " + tables.Members,
				"bans_table = " + tables.Extra[0], "moderation_table = " + tables.Extra[1]}})
			r := room1
			step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
			step(t, f, bob, r, r, "#join", want{to: alice, body: joined(bob)}, want{to: bob, body: joined(bob), reply: true})
			step(t, f, alice, r, r, "#ban dave", want{to: alice, body: "*** <" + dave + "> has been banned", reply: true},
				want{to: bob, body: "*** <" + dave + "> has been banned"})

			cutAt := func(body string, landed ...want) {
				t.Helper()
				proxy.CutAtCommit(cut)
				if cut == dbproxy.BeforeCommit {
					landed = []want{{to: alice, body: unavailable, reply: true}}
				}
				step(t, f, alice, r, r, body, landed...)
				select {
				case c := <-proxy.Cuts:
					if c != cut {
						t.Fatalf("the proxy cut %v", c)
					}
				default:
					t.Fatalf("%q: the proxy cut nothing", body)
				}
			}
			cutAt("#moderate on", want{to: alice, body: moderated, reply: true}, want{to: bob, body: moderated})
			cutAt("#unban dave", want{to: alice, body: unbanned, reply: true}, want{to: bob, body: unbanned})
			if cut == dbproxy.BeforeCommit {
				step(t, f, bob, r, r, "still free", want{to: alice, body: notModerated, ctype: "text/plain;charset=UTF-8"})
				step(t, f, dave, r, r, "#join", want{to: dave, body: "You are banned from " + r, reply: true})
				return
			}
			step(t, f, bob, r, r, "still free", want{to: bob, reply: true,
				body: "Room " + r + " is moderated: only the owner, admins and members with voice may speak; your message was not sent"})
			step(t, f, dave, r, r, "#join", want{to: alice, body: joined(dave)}, want{to: bob, body: joined(dave)},
				want{to: dave, body: joined(dave), reply: true})
		})
	}
}
