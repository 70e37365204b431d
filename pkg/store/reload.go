package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// loadRoomsChunk caps the rooms one LoadRooms query names, well under every
// engine's limit on placeholders.
const loadRoomsChunk = 100

// LoadRooms reads the current rows of the given rooms, with the rows
// handled exactly as Load handles them (odd rows logged and skipped). The
// map has one entry per requested room, keyed by room.Key(): the room as
// the tables hold it now, or nil when the tables have no usable row for it.
//
// The rooms come with their bans and moderation, read in the same
// snapshot.
//
// It is what the daemon calls after an Apply that failed with ErrInDoubt,
// so that memory equals the database whichever way the commit went. The
// rows are read in one transaction (one snapshot on MySQL and PostgreSQL),
// within ApplyTimeout per chunk of 100 rooms.
//
// Room rows are matched ignoring letter case (on PostgreSQL and SQLite a
// scan of the rooms table: 15–26 ms at 100k rooms). Members are found
// through the room index by their room column as imcd and OpenSIPS write it
// ("sip:name@domain", as asked or as the room row spells it; "sips:" too).
// A column written by hand in other letter case than the room row is found
// by Load but, on PostgreSQL and SQLite, not by LoadRooms: finding it would
// scan the members table (0.45–0.56 s at 1M rows).
func (db *DB) LoadRooms(ctx context.Context, rooms []imc.URI) (map[string]*imc.Room, error) {
	out := make(map[string]*imc.Room, len(rooms))
	var want []imc.URI
	for _, r := range rooms {
		if _, dup := out[r.Key()]; !dup {
			out[r.Key()] = nil
			want = append(want, r)
		}
	}
	for len(want) > 0 {
		n := min(len(want), loadRoomsChunk)
		loaded, err := db.loadRoomsOnce(ctx, want[:n])
		if err != nil {
			return nil, fmt.Errorf("store: re-read %d rooms: %w", n, err)
		}
		for _, r := range loaded {
			if _, asked := out[r.Key()]; asked {
				out[r.Key()] = r
			}
		}
		want = want[n:]
	}
	return out, nil
}

func (db *DB) loadRoomsOnce(ctx context.Context, rooms []imc.URI) ([]*imc.Room, error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	tx, err := db.db.BeginTxx(ctx, db.d.snapshot)
	if err != nil {
		err = db.wrap(err)
		if errors.Is(err, ErrUnavailable) {
			db.dropIdle()
		}
		return nil, err
	}
	defer tx.Rollback()
	l := newLoader(db.log)
	q, args := db.roomsQuery(rooms)
	if err := db.scan(ctx, tx, q, args, 3, l.room); err != nil {
		return nil, fmt.Errorf("%q: %w", db.cfg.RoomsTable, err)
	}
	l.indexColumns()
	p := l.newPart()
	p.chunkCap = 64
	var cols []any
	if len(l.rooms) > 0 {
		var q string
		q, cols = db.membersQuery(rooms, l.rooms)
		if err := db.scan(ctx, tx, q, cols, 4, p.member); err != nil {
			return nil, fmt.Errorf("%q: %w", db.cfg.MembersTable, err)
		}
	}
	loaded := l.build([]*memberPart{p})
	if len(loaded) > 0 {
		// The bans and moderation of the rooms, as of the same snapshot:
		// what makes a ban through another instance hold here once the
		// room is re-read.
		if err := db.loadModerationOf(ctx, tx, cols, loaded); err != nil {
			return nil, err
		}
	}
	db.log.Debug("rooms re-read", logkey.Rooms, len(loaded), logkey.Members, l.members, logkey.Skipped, l.skipped)
	return loaded, nil
}

// roomsQuery selects the room rows of rooms, ignoring letter case.
func (db *DB) roomsQuery(rooms []imc.URI) (string, []any) {
	eq := func(col string) string { return col + " = ?" }
	if db.d.foldEq != nil {
		eq = db.d.foldEq
	}
	var b strings.Builder
	b.WriteString("SELECT name, domain, flag FROM " + db.d.table(db.cfg.RoomsTable) + " WHERE ")
	args := make([]any, 0, 2*len(rooms))
	for i, r := range rooms {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(" + eq("name") + " AND " + eq("domain") + ")")
		args = append(args, r.User, r.Host)
	}
	b.WriteString(" ORDER BY id")
	return db.db.Rebind(b.String()), args
}

// membersQuery selects the member rows whose room column is "sip:" or
// "sips:" and a room as asked or as its row spells it: through the room
// index, as imcd and OpenSIPS write that column. (MySQL's collation also
// ignores letter case; on PostgreSQL and SQLite a column written by hand
// in other letter case than the room row is left to Load, which would
// have to scan the table for it.)
func (db *DB) membersQuery(asked []imc.URI, found []*roomEntry) (string, []any) {
	seen := map[string]bool{}
	var args []any
	add := func(u imc.URI) {
		for _, scheme := range []string{"sip:", "sips:"} {
			if s := scheme + u.User + "@" + u.Host; !seen[s] {
				seen[s] = true
				args = append(args, s)
			}
		}
	}
	for _, u := range asked {
		add(u)
	}
	for _, e := range found {
		add(e.uri)
	}
	q := "SELECT username, domain, room, flag FROM " + db.d.table(db.cfg.MembersTable) +
		" WHERE room IN (?" + strings.Repeat(", ?", len(args)-1) + ") ORDER BY id"
	return db.db.Rebind(q), args
}
