package store

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// dumpRows reads the rows of "INSERT INTO `table` VALUES (…),(…);" in a
// mysqldump file: table name -> rows -> values (string or int64).
func dumpRows(t *testing.T, path string) map[string][][]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][]any{}
	re := regexp.MustCompile("(?s)INSERT INTO `(\\w+)` VALUES\\s*(.*?);\n")
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		s := m[2]
		var row []any
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '(':
				row = nil
			case c == ')':
				out[m[1]] = append(out[m[1]], row)
			case c == '\'':
				var v strings.Builder
				for i++; s[i] != '\''; i++ {
					if s[i] == '\\' {
						i++
					}
					v.WriteByte(s[i])
				}
				row = append(row, v.String())
			case c == '-' || c >= '0' && c <= '9':
				j := i + 1
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
				n, _ := strconv.ParseInt(s[i:j], 10, 64)
				row = append(row, n)
				i = j - 1
			}
		}
	}
	return out
}

// insertDump writes the dump's rows, ids included, into the test's tables.
func (db *testDB) insertDump(t *testing.T, path string) {
	t.Helper()
	rows := dumpRows(t, path)
	if len(rows["imc_rooms"]) == 0 || len(rows["imc_members"]) == 0 {
		t.Fatalf("%s: no rows read: %v", path, rows)
	}
	for _, r := range rows["imc_rooms"] {
		db.exec(t, "INSERT INTO {rooms} (id, name, domain, flag) VALUES (?, ?, ?, ?)", r...)
	}
	for _, r := range rows["imc_members"] {
		db.exec(t, "INSERT INTO {members} (id, username, domain, room, flag) VALUES (?, ?, ?, ?, ?)", r...)
	}
	if db.Engine() == dburl.Postgres {
		// Explicit ids do not advance a SERIAL's sequence.
		for _, tb := range []string{db.cfg.RoomsTable, db.cfg.MembersTable} {
			db.exec(t, "SELECT setval('"+tb+"_id_seq', (SELECT max(id) FROM "+tb+"))")
		}
	}
}

// The exact rows OpenSIPS's imc module wrote at a clean shutdown.
func TestLoadNativeCleanShutdown(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		db.insertDump(t, "../../testdata/opensips-wire/imc-native/db-after-clean-shutdown.sql")
		rooms := db.load(t)
		wantRooms(t, rooms, ""+
			"sip:native-1@127.0.0.1 flag=0: *alice@127.0.0.1 dave@127.0.0.1 carol@127.0.0.1 bob@127.0.0.1\n"+
			"sip:native-2@127.0.0.1 flag=0: *bob@127.0.0.1 carol@127.0.0.1\n")
		// Rooms come in table order.
		if rooms[0].URI.User != "native-2" {
			t.Errorf("first room %s, want native-2 (id 1)", rooms[0].URI)
		}
		if strings.Contains(db.logs.String(), "skipped") && strings.Contains(db.logs.String(), "level=WARN") {
			t.Errorf("clean rows were reported odd:\n%s", db.logs)
		}
		// imcd writes on top of native rows, and the result still loads.
		room := uri(t, "sip:native-2@127.0.0.1")
		db.apply(t, addMember(room, uri(t, "sip:dave@127.0.0.1"), imc.MemberInvited), updateMember(room, uri(t, "sip:carol@127.0.0.1"), imc.MemberAdmin))
		wantRooms(t, db.load(t), ""+
			"sip:native-1@127.0.0.1 flag=0: *alice@127.0.0.1 dave@127.0.0.1 carol@127.0.0.1 bob@127.0.0.1\n"+
			"sip:native-2@127.0.0.1 flag=0: *bob@127.0.0.1 ~carol@127.0.0.1 ?dave@127.0.0.1\n")
	})
}

// The rows after the native transcript: a room literally named
// "sip:native-1@127.0.0.1" (from "#join sip:native-1@127.0.0.1"), which is no
// valid SIP user part, and a private room.
func TestLoadNativeTranscriptShutdown(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		db.insertDump(t, "../../testdata/opensips-wire/imc-native/db-after-transcript-shutdown.sql")
		wantRooms(t, db.load(t), "sip:native-3@127.0.0.1 flag=1: *alice@127.0.0.1\n")
		logs := db.logs.String()
		for _, want := range []string{
			`msg="room skipped at load"`, `row.name=sip:native-1@127.0.0.1`,
			`msg="member skipped at load"`, `reason="its room was skipped"`, `row.room=sip:sip:native-1@127.0.0.1@127.0.0.1`,
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %s:\n%s", want, logs)
			}
		}
	})
}

// A room with no members stops the native module's load; imcd loads it.
func TestLoadRoomWithoutMembers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		db.exec(t, "INSERT INTO {rooms} (name, domain, flag) VALUES ('empty', 'h', 0), ('full', 'h', 1)")
		db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('a', 'h', 'sip:full@h', 1)")
		wantRooms(t, db.load(t), "sip:empty@h flag=0:\nsip:full@h flag=1: *a@h\n")
	})
}

// Odd rows are logged with the row and skipped; the load goes on.
func TestLoadOddRows(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		db := openTest(t, engine)
		db.exec(t, "INSERT INTO {rooms} (id, name, domain, flag) VALUES "+
			"(1, 'ok', 'h', 0), (2, 'unknown-bits', 'h', 4), (3, 'deleted', 'h', 2), (4, 'bad name', 'h', 0), "+
			"(5, 'neg', 'h', -1), (7, 'bad', 'h_', 0)")
		db.exec(t, "INSERT INTO {members} (id, username, domain, room, flag) VALUES "+
			"(10, 'owner', 'h', 'sip:ok@h', 1), "+
			"(11, 'second-owner', 'h', 'sip:ok@h', 1), "+
			"(12, 'bits', 'h', 'sip:ok@h', 32), "+
			"(13, 'deleted', 'h', 'sip:ok@h', 8), "+
			"(14, 'skipmark', 'h', 'sip:ok@h', 16), "+
			"(15, 'orphan', 'h', 'sip:gone@h', 0), "+
			"(16, 'of-skipped', 'h', 'sip:unknown-bits@h', 0), "+
			"(17, 'bad user', 'h', 'sip:ok@h', 0), "+
			"(18, 'garbage', 'h', 'no uri here', 0), "+
			"(19, 'upper', 'h', 'SIP:OK@H', 4), "+
			"(20, 'neg', 'h', 'sip:ok@h', -8)")
		wantOdd := map[string]string{
			"row.name=unknown-bits":     "unknown flag bits",
			"row.name=deleted":          "transient 'deleted' mark",
			`row.name="bad name"`:       "not a valid SIP address",
			"row.name=neg":              "unknown flag bits",
			"row.name=bad":              "not a valid SIP address",
			"row.username=second-owner": "second owner",
			"row.username=bits":         "unknown flag bits",
			"row.username=deleted":      "transient 'deleted' mark",
			"row.username=orphan":       "no such room",
			"row.username=of-skipped":   "its room was skipped",
			`row.username="bad user"`:   "not a valid SIP address",
			"row.username=garbage":      "not a SIP URI",
			"row.username=neg":          "unknown flag bits",
		}
		if engine != dburl.MySQL {
			// MySQL's unique key already ignores letter case.
			db.exec(t, "INSERT INTO {rooms} (id, name, domain, flag) VALUES (6, 'OK', 'H', 1)")
			wantOdd["row.name=OK"] = "duplicate of an earlier room"
		}
		if engine == dburl.SQLite {
			// Only SQLite stores values wider than the declared columns.
			long := strings.Repeat("x", 65)
			db.exec(t, "INSERT INTO {rooms} (id, name, domain, flag) VALUES (8, ?, 'h', 0)", long)
			db.exec(t, "INSERT INTO {members} (id, username, domain, room, flag) VALUES (21, ?, 'h', 'sip:ok@h', 0)", long)
			wantOdd["row.name="+long] = "longer than 64"
			wantOdd["row.username="+long] = "longer than 64"
		}
		wantRooms(t, db.load(t), "sip:ok@h flag=0: *owner@h second-owner@h skipmark@h ?upper@h\n")
		lines := strings.Split(db.logs.String(), "\n")
		for id, reason := range wantOdd {
			found := false
			for _, l := range lines {
				if strings.Contains(l, id+" ") && strings.Contains(l, reason) && strings.Contains(l, "level=WARN") {
					found = true
				}
			}
			if !found {
				t.Errorf("no warning %q for %s in:\n%s", reason, id, db.logs)
			}
		}
	})
}

// Odd rows beyond the first maxLoggedRows are counted, not logged.
func TestLoadLogCap(t *testing.T) {
	db := openTest(t, dburl.SQLite)
	for i := range maxLoggedRows + 20 {
		db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES (?, 'h', 'sip:gone@h', 0)", "u"+strconv.Itoa(i))
	}
	db.load(t)
	logs := db.logs.String()
	if n := strings.Count(logs, "member skipped at load"); n != maxLoggedRows {
		t.Errorf("%d rows logged, want %d", n, maxLoggedRows)
	}
	if !strings.Contains(logs, "skipped=120") {
		t.Errorf("summary lacks the count:\n%s", logs)
	}
}

func TestParseInt(t *testing.T) {
	f := func(in string, want int64, ok bool) {
		t.Helper()
		got, gotOK := parseInt([]byte(in))
		if got != want || gotOK != ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", in, got, gotOK, want, ok)
		}
	}
	f("0", 0, true)
	f("17", 17, true)
	f("-8", -8, true)
	f("", 0, false)
	f("-", 0, false)
	f("1.5", 0, false)
	f("12345678901234567890", 0, false)
}

// Large members tables are read in id ranges at once; the result must be
// the serial one: same rooms, members in id order, the first owner by id
// kept, odd rows reported.
func TestLoadParallel(t *testing.T) {
	for _, engine := range []string{dburl.MySQL, dburl.Postgres} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			needEngine(t, engine)
			db := openTest(t, engine)
			db.insertDump(t, "../../testdata/opensips-wire/imc-native/db-after-clean-shutdown.sql")
			room := uri(t, "sip:big@h")
			db.apply(t, createRoom(room, 0))
			var changes []imc.Change
			for i := range 60 {
				f := imc.MemberFlags(0)
				if i == 7 || i == 40 {
					f = imc.MemberOwner
				}
				changes = append(changes, addMember(room, imc.URI{User: "u" + strconv.Itoa(i), Host: "h"}, f))
			}
			db.apply(t, changes...)
			db.exec(t, "INSERT INTO {members} (username, domain, room, flag) VALUES ('orphan', 'h', 'sip:gone@h', 0)")
			serial := dump(db.load(t))
			db.parallelSpan = 1
			if got := dump(db.load(t)); got != serial {
				t.Errorf("parallel load:\n%s\nserial load:\n%s", got, serial)
			}
			if !strings.Contains(serial, "sip:big@h flag=0: *u7@h u0@h") {
				t.Errorf("first owner by id not kept:\n%s", serial)
			}
			logs := db.logs.String()
			if strings.Count(logs, "row.username=u40") != 2 || strings.Count(logs, "row.username=orphan") != 2 {
				t.Errorf("odd rows not reported by both loads:\n%s", logs)
			}
		})
	}
}
