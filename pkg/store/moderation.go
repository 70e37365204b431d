package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// The moderation of rooms lives in two tables of imcd's own beside the
// standard ones, never in them: the native module reads every bit of
// imc_rooms.flag and imc_members.flag, and must never see a banned user as
// a member. A ban deletes the member row and inserts the ban row in one
// transaction.
//
//	imc_bans(room, username, domain, reason, banned_by, time_ms)
//	imc_moderation(room, username, domain)
//
// A moderation row with an empty username and domain says the room is
// moderated; one naming a member gives that member voice. Rows are keyed by
// the room's URI as imc_members.room spells it ("sip:name@domain", from the
// room row), like the history's; users by username and domain as given.

// moderationQueries are the statements of the bans and moderation tables.
type moderationQueries struct {
	insertBan, deleteBan, deleteRoomBans string
	insertMod, deleteMod, deleteRoomMod  string
	deleteVoice                          string
	loadBans, loadMod                    string
	bansIn, modIn                        *multiRow
	probeBans, probeMod                  string
}

const (
	bansCols = "room, username, domain, reason, banned_by, time_ms"
	modCols  = "room, username, domain"
)

func buildModerationQueries(d *dialect, cfg *Config) moderationQueries {
	b, m := d.table(cfg.BansTable), d.table(cfg.ModerationTable)
	re := func(q string) string { return rebind(d, q) }
	eq := func(col string) string { return col + " = ?" }
	if d.foldEq != nil {
		eq = d.foldEq
	}
	user := " AND " + eq("username") + " AND " + eq("domain")
	return moderationQueries{
		insertBan:      re("INSERT INTO " + b + " (" + bansCols + ") VALUES (?, ?, ?, ?, ?, ?)"),
		deleteBan:      re("DELETE FROM " + b + " WHERE room = ?" + user),
		deleteRoomBans: re("DELETE FROM " + b + " WHERE room = ?"),
		insertMod:      re("INSERT INTO " + m + " (" + modCols + ") VALUES (?, ?, ?)"),
		deleteMod:      re("DELETE FROM " + m + " WHERE room = ? AND username = ? AND domain = ?"),
		deleteVoice:    re("DELETE FROM " + m + " WHERE room = ?" + user),
		deleteRoomMod:  re("DELETE FROM " + m + " WHERE room = ?"),
		loadBans:       "SELECT " + bansCols + " FROM " + b,
		loadMod:        "SELECT " + modCols + " FROM " + m,
		bansIn:         newInList(d.bind, "SELECT "+bansCols+" FROM "+b+" WHERE room IN (", ")"),
		modIn:          newInList(d.bind, "SELECT "+modCols+" FROM "+m+" WHERE room IN (", ")"),
		probeBans:      "SELECT " + bansCols + " FROM " + b + " WHERE 1 = 0",
		probeMod:       "SELECT " + modCols + " FROM " + m + " WHERE 1 = 0",
	}
}

// moderate runs, in Apply's transaction, the statement of a moderation
// change, and what a change of the standard tables ends: a removed
// member's voice, a destroyed room's bans and moderation (and those a new
// room could inherit from rows left behind by another program).
func (db *DB) moderate(ctx context.Context, tx *sqlx.Tx, c *imc.Change) error {
	q := &db.mq
	room := c.Room.String()
	var err error
	switch c.Op {
	case imc.OpCreateRoom, imc.OpDeleteRoom:
		if _, err = tx.ExecContext(ctx, q.deleteRoomBans, room); err == nil {
			_, err = tx.ExecContext(ctx, q.deleteRoomMod, room)
		}
	case imc.OpRemoveMember:
		_, err = tx.ExecContext(ctx, q.deleteVoice, room, c.Member.User, c.Member.Host)
	case imc.OpModerate:
		_, err = tx.ExecContext(ctx, q.insertMod, room, "", "")
	case imc.OpUnmoderate:
		err = db.deleteOne(ctx, tx, c, q.deleteMod, room, "", "")
	case imc.OpVoice:
		_, err = tx.ExecContext(ctx, q.insertMod, room, c.Member.User, c.Member.Host)
	case imc.OpDevoice:
		err = db.deleteOne(ctx, tx, c, q.deleteVoice, room, c.Member.User, c.Member.Host)
	case imc.OpBan:
		by := ""
		if !c.By.IsZero() {
			by = c.By.String()
		}
		_, err = tx.ExecContext(ctx, q.insertBan, room, c.Member.User, c.Member.Host, []byte(c.Reason), by, time.Now().UnixMilli())
	case imc.OpUnban:
		err = db.deleteOne(ctx, tx, c, q.deleteBan, room, c.Member.User, c.Member.Host)
	}
	return err
}

// deleteOne runs a DELETE of one row; a row already gone leaves the end
// state the change wants, so it is logged, not failed.
func (db *DB) deleteOne(ctx context.Context, tx *sqlx.Tx, c *imc.Change, q string, args ...any) error {
	n, err := execCount(ctx, tx, q, args...)
	if err == nil && n == 0 {
		db.log.Warn("row to delete was not in the table", logkey.Change, c.String())
	}
	return err
}

// modLoader gathers the moderation rows of the rooms being loaded, keyed
// by room key.
type modLoader struct {
	log     *slog.Logger
	rooms   map[string]*imc.Moderation
	skipped int
	logged  int
}

func newModLoader(log *slog.Logger) *modLoader {
	return &modLoader{log: log, rooms: map[string]*imc.Moderation{}}
}

func (l *modLoader) odd(msg, reason string, row slog.Attr) {
	l.skipped++
	if l.logged++; l.logged <= maxLoggedRows {
		l.log.Warn(msg, logkey.Reason, reason, row)
	}
}

func (l *modLoader) of(room imc.URI) *imc.Moderation {
	m := l.rooms[room.Key()]
	if m == nil {
		m = &imc.Moderation{}
		l.rooms[room.Key()] = m
	}
	return m
}

// ban handles one bans row: room, username, domain, reason, banned_by,
// time_ms.
func (l *modLoader) ban(c []sql.RawBytes) {
	room, errRoom := imc.ParseURI(string(c[0]))
	user, errUser := imc.NewURI(string(c[1]), string(c[2]))
	var by imc.URI
	var errBy error
	if len(c[4]) > 0 {
		by, errBy = imc.ParseURI(string(c[4]))
	}
	if errRoom != nil || errUser != nil || errBy != nil || len(c[3]) > imc.MaxReasonLen {
		l.odd("ban skipped at load", "room, user or banned_by is not a SIP address, or the reason is too long",
			slog.Group(logkey.Row, "room", string(c[0]), "username", string(c[1]), "domain", string(c[2]), "banned_by", string(c[4])))
		return
	}
	m := l.of(room)
	m.Bans = append(m.Bans, imc.Ban{User: user, Reason: string(c[3]), By: by})
}

// mod handles one moderation row: room, username, domain.
func (l *modLoader) mod(c []sql.RawBytes) {
	room, err := imc.ParseURI(string(c[0]))
	if err != nil {
		l.odd("moderation row skipped at load", "room is not a SIP address", slog.Group(logkey.Row, "room", string(c[0])))
		return
	}
	if len(c[1]) == 0 && len(c[2]) == 0 {
		l.of(room).Moderated = true
		return
	}
	user, err := imc.NewURI(string(c[1]), string(c[2]))
	if err != nil {
		l.odd("voice skipped at load", "user is not a SIP address", slog.Group(logkey.Row, "room", string(c[0]),
			"username", string(c[1]), "domain", string(c[2])))
		return
	}
	m := l.of(room)
	m.Voiced = append(m.Voiced, user)
}

// attach gives each room its moderation; rows of rooms that are not there
// are logged and left in the tables.
func (l *modLoader) attach(rooms []*imc.Room) {
	for i, r := range rooms {
		if m := l.rooms[r.Key()]; m != nil {
			rooms[i] = r.WithModeration(*m)
			if n := len(m.Voiced) - len(rooms[i].Moderation().Voiced); n > 0 {
				l.odd("voices skipped at load", "not members of the room", slog.Group(logkey.Row, "room", r.URI.String(), "rows", n))
			}
			for _, b := range m.Bans {
				if _, member := r.Member(b.User); member {
					l.odd("banned user is a member", "a member row beside the ban (written by another program): the user is kept out",
						slog.Group(logkey.Row, "room", r.URI.String(), "username", b.User.User, "domain", b.User.Host))
				}
			}
			delete(l.rooms, r.Key())
		}
	}
	for key := range l.rooms {
		l.odd("moderation of a missing room skipped at load", "no such room in the rooms table", slog.String(logkey.Row, key))
	}
}

// loadModeration reads every bans and moderation row and gives the rooms
// theirs.
func (db *DB) loadModeration(ctx context.Context, on queryer, rooms []*imc.Room) error {
	l := newModLoader(db.log)
	if err := db.scan(ctx, on, db.mq.loadBans, nil, 6, l.ban); err != nil {
		return fmt.Errorf("%q: %w", db.cfg.BansTable, err)
	}
	if err := db.scan(ctx, on, db.mq.loadMod, nil, 3, l.mod); err != nil {
		return fmt.Errorf("%q: %w", db.cfg.ModerationTable, err)
	}
	l.attach(rooms)
	return nil
}

// loadModerationOf reads the bans and moderation rows whose room column is
// one of cols, and gives the rooms theirs (LoadRooms).
func (db *DB) loadModerationOf(ctx context.Context, on queryer, cols []any, rooms []*imc.Room) error {
	l := newModLoader(db.log)
	if err := db.scan(ctx, on, db.mq.bansIn.sql(len(cols)), cols, 6, l.ban); err != nil {
		return fmt.Errorf("%q: %w", db.cfg.BansTable, err)
	}
	if err := db.scan(ctx, on, db.mq.modIn.sql(len(cols)), cols, 3, l.mod); err != nil {
		return fmt.Errorf("%q: %w", db.cfg.ModerationTable, err)
	}
	l.attach(rooms)
	return nil
}

// validModeration refuses a moderation change that does not fit the
// tables' columns.
func validModeration(c *imc.Change) error {
	if c.Op == imc.OpBan {
		if len(c.Reason) > imc.MaxReasonLen {
			return fmt.Errorf("%w: reason of %d bytes; at most %d are stored", imc.ErrTooLong, len(c.Reason), imc.MaxReasonLen)
		}
		if !c.By.IsZero() {
			return checkText("banned_by", c.By.String())
		}
	}
	return nil
}
