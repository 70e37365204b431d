package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestConflictWithSkippedRow: a member row imcd skipped at load (an unknown
// flag bit) still holds its unique key, so that user's #join conflicts in
// the database. The user is told it cannot be saved (not "try again"), the
// operator finds the row in the log, and memory is unchanged.
func TestConflictWithSkippedRow(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	p := startIMCD(t, f, procOpts{dir: dir})
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	p.stop()

	db, err := sql.Open("sqlite", filepath.Join(dir, "imcd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO imc_members (username, domain, room, flag) VALUES ('bob', '127.0.0.1', 'sip:chat-1@127.0.0.1', 64)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	p = startIMCD(t, f, procOpts{dir: dir})
	step(t, f, bob, room1, room1, "#join", want{to: bob, reply: true,
		body: "The room service could not save this change: it conflicts with data already stored. The operator has been told"})
	log := p.log.String()
	if !strings.Contains(log, "bob") || !strings.Contains(log, "conflicting with stored rows") {
		t.Errorf("the skipped row and the conflict are not in the log:\n%s", log)
	}
	step(t, f, alice, room1, room1, "#list", want{to: alice, body: "Members:\n*" + alice, reply: true})
}
