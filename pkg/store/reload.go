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
// It is what the daemon calls after an Apply that failed with ErrInDoubt,
// so that memory equals the database whichever way the commit went. The
// rows are read in one transaction (one snapshot on MySQL and PostgreSQL),
// within ApplyTimeout per chunk of 100 rooms.
//
// Members are matched to a room ignoring letter case, as Load matches them.
// On MySQL the collation does that through the room index; on PostgreSQL
// and SQLite it costs a scan of the members table (about 0.2 s at 1M rows).
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
	roomsQ, membersQ, roomArgs, memberArgs := db.roomQueries(rooms)
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
	if err := db.scan(ctx, tx, roomsQ, roomArgs, 3, l.room); err != nil {
		return nil, fmt.Errorf("%q: %w", db.cfg.RoomsTable, err)
	}
	l.indexColumns()
	p := l.newPart()
	if len(l.rooms) > 0 {
		if err := db.scan(ctx, tx, membersQ, memberArgs, 4, p.member); err != nil {
			return nil, fmt.Errorf("%q: %w", db.cfg.MembersTable, err)
		}
	}
	loaded := l.build([]*memberPart{p})
	db.log.Debug("rooms re-read", logkey.Rooms, len(loaded), logkey.Members, l.members, logkey.Skipped, l.skipped)
	return loaded, nil
}

// roomQueries builds the two selects of LoadRooms for these rooms. Room
// rows are matched ignoring letter case; member rows by their room column,
// as "sip:" or "sips:" and ignoring letter case, the spellings Load
// resolves (a room column with URI parameters, which nothing writes, is
// left to Load).
func (db *DB) roomQueries(rooms []imc.URI) (roomsQ, membersQ string, roomArgs, memberArgs []any) {
	eq := func(col string) string { return col + " = ?" }
	if db.d.foldEq != nil {
		eq = db.d.foldEq
	}
	var rb, mb strings.Builder
	rb.WriteString("SELECT name, domain, flag FROM " + db.d.table(db.cfg.RoomsTable) + " WHERE ")
	mb.WriteString("SELECT username, domain, room, flag FROM " + db.d.table(db.cfg.MembersTable) + " WHERE ")
	roomCol := "room"
	if db.d.foldEq != nil {
		roomCol = "lower(room)"
	}
	mb.WriteString(roomCol + " IN (")
	for i, r := range rooms {
		if i > 0 {
			rb.WriteString(" OR ")
			mb.WriteString(", ")
		}
		rb.WriteString("(" + eq("name") + " AND " + eq("domain") + ")")
		roomArgs = append(roomArgs, r.User, r.Host)
		if db.d.foldEq != nil {
			mb.WriteString("lower(?), lower(?)")
		} else {
			mb.WriteString("?, ?")
		}
		memberArgs = append(memberArgs, "sip:"+r.User+"@"+r.Host, "sips:"+r.User+"@"+r.Host)
	}
	rb.WriteString(" ORDER BY id")
	mb.WriteString(") ORDER BY id")
	return db.db.Rebind(rb.String()), db.db.Rebind(mb.String()), roomArgs, memberArgs
}
