package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// dumpMod renders the rooms' moderation: one line per room that has any,
// "sip:r@h: moderated +voiced -banned(by: reason)".
func dumpMod(rooms []*imc.Room) string {
	sorted := append([]*imc.Room(nil), rooms...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key() < sorted[j].Key() })
	var b strings.Builder
	for _, r := range sorted {
		m := r.Moderation()
		if m.IsZero() {
			continue
		}
		b.WriteString(r.URI.String() + ":")
		if m.Moderated {
			b.WriteString(" moderated")
		}
		for _, v := range m.Voiced {
			b.WriteString(" +" + v.AOR())
		}
		for _, ban := range m.Bans {
			fmt.Fprintf(&b, " -%s(%s: %q)", ban.User.AOR(), ban.By.AOR(), ban.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func ban(room, u, by imc.URI, reason string) imc.Change {
	return imc.Change{Op: imc.OpBan, Room: room, Member: u, By: by, Reason: reason}
}

// TestModeration: bans, moderation and voices are committed with the
// membership changes they go with, read back by Load and LoadRooms, and
// end with the member (voice) or the room (all of it).
func TestModeration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		ctx := context.Background()
		room, other := uri(t, "sip:chat-1@h"), uri(t, "sip:chat-2@h")
		alice, bob, carol, dave := uri(t, "alice@h"), uri(t, "bob@h"), uri(t, "carol@h"), uri(t, "dave@far")
		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner), addMember(room, bob, 0), addMember(room, carol, 0),
			createRoom(other, 0), addMember(other, bob, imc.MemberOwner))
		// A ban of a member: its row goes, the ban's comes, in one
		// transaction. The reason is kept byte for byte.
		reason := "spam \xff\x00 and \u00e9"
		db.apply(t, removeMember(room, bob), ban(room, bob, alice, reason))
		db.apply(t, ban(room, dave, imc.URI{}, ""))
		db.apply(t, imc.Change{Op: imc.OpModerate, Room: room}, imc.Change{Op: imc.OpVoice, Room: room, Member: carol})
		want := fmt.Sprintf("sip:chat-1@h: moderated +carol@h -bob@h(alice@h: %q) -dave@far(@: \"\")\n", reason)
		rooms := db.load(t)
		wantRooms(t, rooms, "sip:chat-1@h flag=0: *alice@h carol@h\nsip:chat-2@h flag=0: *bob@h\n")
		if got := dumpMod(rooms); got != want {
			t.Errorf("Load:\n%s\nwant:\n%s", got, want)
		}
		re, err := db.LoadRooms(ctx, []imc.URI{uri(t, "sip:CHAT-1@h"), other})
		if err != nil {
			t.Fatal(err)
		}
		if got := dumpMod([]*imc.Room{re["chat-1@h"], re["chat-2@h"]}); got != want {
			t.Errorf("LoadRooms:\n%s\nwant:\n%s", got, want)
		}

		// A second ban of the same user is a conflict: memory and the
		// tables disagree.
		if err := db.Apply(ctx, []imc.Change{ban(room, bob, alice, "")}); !errors.Is(err, ErrConflict) {
			t.Errorf("second ban: %v, want ErrConflict", err)
		}
		// A member who leaves takes their voice along.
		db.apply(t, removeMember(room, carol))
		db.apply(t, addMember(room, carol, 0))
		db.apply(t, imc.Change{Op: imc.OpUnban, Room: room, Member: dave})
		if got := dumpMod(db.load(t)); got != fmt.Sprintf("sip:chat-1@h: moderated -bob@h(alice@h: %q)\n", reason) {
			t.Errorf("after leave and unban:\n%s", got)
		}
		db.apply(t, imc.Change{Op: imc.OpUnmoderate, Room: room}, imc.Change{Op: imc.OpUnban, Room: room, Member: uri(t, "Bob@H")})
		if got := dumpMod(db.load(t)); got != "" {
			t.Errorf("after unmoderate and unban:\n%s", got)
		}

		// A destroyed room takes its bans and moderation along; a room
		// created again starts clean, even of rows another program left.
		db.apply(t, ban(room, dave, alice, "x"), imc.Change{Op: imc.OpModerate, Room: room})
		db.apply(t, deleteRoom(room))
		if n := db.count(t, "SELECT COUNT(*) FROM {bans}") + db.count(t, "SELECT COUNT(*) FROM {moderation}"); n != 0 {
			t.Errorf("%d moderation rows left after the room was destroyed", n)
		}
		db.exec(t, "INSERT INTO {bans} (room, username, domain, reason, banned_by, time_ms) VALUES ('sip:chat-1@h', 'eve', 'h', '', '', 0)")
		db.exec(t, "INSERT INTO {moderation} (room, username, domain) VALUES ('sip:chat-1@h', '', '')")
		db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner))
		if got := dumpMod(db.load(t)); got != "" {
			t.Errorf("a room created again inherited:\n%s", got)
		}
	})
}

// TestModerationOddRows: rows that cannot be used are logged and skipped,
// never fatal: a room that is not in the rooms table, a voice of someone
// who is not a member, addresses that do not parse. A member row beside a
// ban keeps the member, and the ban keeps them out.
func TestModerationOddRows(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		room := uri(t, "sip:chat-1@h")
		db.apply(t, createRoom(room, 0), addMember(room, uri(t, "alice@h"), imc.MemberOwner), addMember(room, uri(t, "bob@h"), 0))
		for _, row := range []string{"'sip:gone@h', 'x', 'h'", "'sip:chat-1@h', 'zed', 'h'", "'not a uri', '', ''", "'sip:chat-1@h', 'a b', 'h'"} {
			db.exec(t, "INSERT INTO {moderation} (room, username, domain) VALUES ("+row+")")
		}
		for _, row := range []string{"'sip:gone@h', 'x', 'h', ''", "'sip:chat-1@h', 'bob', 'h', 'sip:alice@h'", "'sip:chat-1@h', 'y', 'h', 'not an address'"} {
			db.exec(t, "INSERT INTO {bans} (room, username, domain, banned_by, reason, time_ms) VALUES ("+row+", '', 0)")
		}
		rooms := db.load(t)
		wantRooms(t, rooms, "sip:chat-1@h flag=0: *alice@h bob@h\n")
		if got := dumpMod(rooms); got != "sip:chat-1@h: -bob@h(alice@h: \"\")\n" {
			t.Errorf("loaded:\n%s", got)
		}
		logs := db.logs.String()
		for _, want := range []string{"moderation of a missing room skipped at load", "voices skipped at load",
			"moderation row skipped at load", "voice skipped at load", "ban skipped at load", "banned user is a member"} {
			if !strings.Contains(logs, want) {
				t.Errorf("no %q in the logs:\n%s", want, logs)
			}
		}
	})
}

// TestNativeReadsModeration: what the native imc module reads after imcd
// banned, moderated and gave voice. It reads imc_rooms (name, domain,
// flag) and, for each room, the imc_members rows whose room is the room's
// URI (username, domain, flag), and takes the flags as its own bits: it
// must never see a banned user as a member, nor a bit it does not know.
func TestNativeReadsModeration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		e := imc.NewEngine(imc.Config{ManagerUser: "chat-manager"})
		rs := imc.NewRooms()
		send := func(from, to, body string) {
			t.Helper()
			in, err := e.Prepare(imc.Request{From: "sip:" + from + "@h", RURI: "sip:" + to + "@h", Body: body})
			if err != nil {
				t.Fatal(err)
			}
			res := e.Handle(rs, in)
			if res.Outcome != imc.OK {
				t.Fatalf("%s %q refused: %v", from, body, res.Notices)
			}
			db.apply(t, res.Changes...)
			rs.Apply(res.Changes)
		}
		send("alice", "chat-1", "#create chat-1")
		for _, u := range []string{"bob", "carol", "dave", "erin"} {
			send(u, "chat-1", "#join")
		}
		send("alice", "chat-1", "#modify carol admin")
		send("alice", "chat-1", "#invite frank")
		send("alice", "chat-1", "#moderate on")
		send("alice", "chat-1", "#voice dave")
		send("carol", "chat-1", "#ban bob spamming")
		send("alice", "chat-1", "#ban carol rogue admin")
		send("alice", "chat-1", "#ban frank")
		send("alice", "chat-1", "#ban zed pre-emptively")
		send("alice", "chat-1", "#create chat-2 private")
		send("alice", "chat-2", "#moderate on")

		var native []string
		rooms, err := db.db.Query(db.sql("SELECT name, domain, flag FROM {rooms} ORDER BY id"))
		if err != nil {
			t.Fatal(err)
		}
		type room struct {
			name, domain string
			flag         int64
		}
		var list []room
		for rooms.Next() {
			var r room
			if err := rooms.Scan(&r.name, &r.domain, &r.flag); err != nil {
				t.Fatal(err)
			}
			list = append(list, r)
		}
		rooms.Close()
		sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
		for _, r := range list {
			if r.flag&^int64(imc.RoomPrivate) != 0 {
				t.Errorf("room %s: flag %d has bits the native module does not know", r.name, r.flag)
			}
			native = append(native, fmt.Sprintf("room %s@%s flag=%d", r.name, r.domain, r.flag))
			members, err := db.db.Query(db.sql("SELECT username, domain, flag FROM {members} WHERE room = ? ORDER BY id"), "sip:"+r.name+"@"+r.domain)
			if err != nil {
				t.Fatal(err)
			}
			for members.Next() {
				var user, domain string
				var flag int64
				if err := members.Scan(&user, &domain, &flag); err != nil {
					t.Fatal(err)
				}
				if flag&^int64(imc.MemberStored) != 0 {
					t.Errorf("member %s: flag %d has bits the native module does not know", user, flag)
				}
				native = append(native, fmt.Sprintf("  %s@%s flag=%d", user, domain, flag))
			}
			members.Close()
		}
		want := []string{
			"room chat-1@h flag=0", "  alice@h flag=1", "  dave@h flag=0", "  erin@h flag=0",
			"room chat-2@h flag=1", "  alice@h flag=1",
		}
		if strings.Join(native, "\n") != strings.Join(want, "\n") {
			t.Errorf("the native module reads:\n%s\nwant:\n%s", strings.Join(native, "\n"), strings.Join(want, "\n"))
		}
		// imcd itself reads the bans and moderation back.
		if got := dumpMod(db.load(t)); got != "sip:chat-1@h: moderated +dave@h -bob@h(carol@h: \"spamming\") -carol@h(alice@h: \"rogue admin\")"+
			" -frank@h(alice@h: \"\") -zed@h(alice@h: \"pre-emptively\")\nsip:chat-2@h: moderated\n" {
			t.Errorf("imcd reads:\n%s", got)
		}
	})
}

// TestModerationValidate: a ban's reason and author must fit their columns,
// and the moderation changes name a member where they need one; nothing is
// written otherwise.
func TestModerationValidate(t *testing.T) {
	db := openTest(t, "sqlite")
	room := uri(t, "sip:chat-1@h")
	db.apply(t, createRoom(room, 0))
	for _, c := range []struct {
		c    imc.Change
		want error
	}{
		{ban(room, uri(t, "bob@h"), imc.URI{}, strings.Repeat("x", imc.MaxReasonLen+1)), imc.ErrTooLong},
		{imc.Change{Op: imc.OpVoice, Room: room}, ErrInvalidChange},
		{imc.Change{Op: imc.OpBan, Room: room}, ErrInvalidChange},
		{ban(room, uri(t, strings.Repeat("b", 65)+"@h"), imc.URI{}, ""), imc.ErrTooLong},
		{imc.Change{Op: imc.OpLast + 1, Room: room}, ErrInvalidChange},
	} {
		if err := db.Apply(context.Background(), []imc.Change{c.c}); !errors.Is(err, c.want) {
			t.Errorf("Apply(%v) = %v, want %v", c.c, err, c.want)
		}
	}
	if n := db.count(t, "SELECT COUNT(*) FROM {bans}") + db.count(t, "SELECT COUNT(*) FROM {moderation}"); n != 0 {
		t.Errorf("%d rows written", n)
	}
}
