package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Topic is a room's topic.
type Topic struct {
	// Room is stored as Room.String(), like HistoryLine.Room.
	Room imc.URI
	// Text is kept byte for byte, at most MaxBodyLen bytes. Empty clears
	// the topic.
	Text []byte
	// SetBy is the URI of who set it: printable ASCII, at most 255 bytes.
	SetBy string
	// Time is when it was set, stored in milliseconds since the epoch.
	Time time.Time
}

// Mark is the last history line delivered to a member, stored when the
// member became unreachable so that catch-up survives a restart.
type Mark struct {
	Room   imc.URI
	Member imc.URI
	Seq    int64
}

// forgetHistory deletes, in Apply's transaction, what a change ends: a
// destroyed room's history, topic and marks; a removed member's mark. So a
// room created again under the same name starts with none of them, and
// numbers its lines from 1 without meeting old ones.
//
// The daemon must not append lines of a room after the change set that
// destroys it has committed (it drops, or writes before, the lines still
// queued for it); such lines would be kept as the history of a later room
// of the same name.
func (db *DB) forgetHistory(ctx context.Context, tx *sqlx.Tx, c *imc.Change) error {
	room := c.Room.String()
	switch c.Op {
	case imc.OpDeleteRoom:
		return db.deleteRoomRows(ctx, tx, room)
	case imc.OpRemoveMember:
		_, err := tx.ExecContext(ctx, db.hq.deleteMark, room, c.Member.User, c.Member.Host)
		return err
	}
	return nil
}

// ForgetRoom deletes a room's history, topic and marks, as destroying the
// room does in Apply's transaction. The daemon calls it once the lines it
// had queued for the destroyed room are written, so that none is left to
// be taken for the history of a later room of the same name.
func (db *DB) ForgetRoom(ctx context.Context, room imc.URI) error {
	if err := db.needHistory("forget room"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	err := db.retrying(ctx, func(ctx context.Context) error { return db.deleteRoomRows(ctx, db.db, room.String()) })
	if err != nil {
		return fmt.Errorf("store: forget the history of %s: %w", room, db.wrap(err))
	}
	return nil
}

// deleteRoomRows deletes the history, topic and marks of room (as
// imc_members.room spells it).
func (db *DB) deleteRoomRows(ctx context.Context, on execer, room string) error {
	for _, q := range []string{db.hq.deleteRoom, db.hq.deleteTopic, db.hq.deleteMarks} {
		if _, err := on.ExecContext(ctx, q, room); err != nil {
			return err
		}
	}
	return nil
}

// SetTopic stores the room's topic, replacing the one before; an empty
// Text deletes it. It runs within ApplyTimeout.
func (db *DB) SetTopic(ctx context.Context, t Topic) error {
	if err := db.needHistory("set topic"); err != nil {
		return err
	}
	if err := checkTopic(&t); err != nil {
		return fmt.Errorf("store: set topic of %s: %w", t.Room, err)
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	err := db.retrying(ctx, func(ctx context.Context) error {
		if len(t.Text) == 0 {
			_, err := db.db.ExecContext(ctx, db.hq.deleteTopic, t.Room.String())
			return err
		}
		_, err := db.db.ExecContext(ctx, db.hq.setTopic.sql(1), t.Room.String(), t.Text, t.SetBy, t.Time.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set topic of %s: %w", t.Room, db.wrap(err))
	}
	return nil
}

func checkTopic(t *Topic) error {
	switch {
	case t.Room.User == "" || t.Room.Host == "":
		return fmt.Errorf("%w: no room", ErrInvalidChange)
	case len(t.Text) > MaxBodyLen:
		return fmt.Errorf("%w: topic of %d bytes; at most %d are stored", imc.ErrTooLong, len(t.Text), MaxBodyLen)
	}
	if err := fits("room URI", t.Room.String()); err != nil {
		return err
	}
	return checkText("set_by", t.SetBy)
}

// Topics returns every stored topic, keyed by room.Key(). Rows whose room
// column is no SIP URI are logged and left out.
func (db *DB) Topics(ctx context.Context) (map[string]Topic, error) {
	if err := db.needHistory("topics"); err != nil {
		return nil, err
	}
	rows, err := db.db.QueryContext(ctx, db.hq.topics)
	if err != nil {
		return nil, fmt.Errorf("store: read %q: %w", db.cfg.TopicsTable, db.wrap(err))
	}
	defer rows.Close()
	out := map[string]Topic{}
	for rows.Next() {
		var room string
		var t Topic
		var ms int64
		if err := rows.Scan(&room, &t.Text, &t.SetBy, &ms); err != nil {
			return nil, fmt.Errorf("store: read %q: %w", db.cfg.TopicsTable, db.wrap(err))
		}
		u, err := imc.ParseURI(room)
		if err != nil {
			db.log.Warn("topic of an unreadable room column left out", logkey.Table, db.cfg.TopicsTable, logkey.Row, room)
			continue
		}
		t.Room, t.Time = u, time.UnixMilli(ms)
		out[u.Key()] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read %q: %w", db.cfg.TopicsTable, db.wrap(err))
	}
	return out, nil
}

// SetMarks stores members' marks, replacing earlier ones of the same room
// and member, in one statement per 256 marks, within ApplyTimeout. Of two
// marks for one room and member in marks, the later one wins.
func (db *DB) SetMarks(ctx context.Context, marks []Mark) error {
	if err := db.needHistory("set marks"); err != nil {
		return err
	}
	// One statement must not name a row twice (PostgreSQL refuses to
	// update a row twice in one INSERT … ON CONFLICT).
	last := make(map[[2]string]int, len(marks))
	for i := range marks {
		m := &marks[i]
		if m.Room.User == "" || m.Room.Host == "" || m.Member.User == "" || m.Member.Host == "" {
			return fmt.Errorf("store: set marks: %w: mark %d has no room or no member", ErrInvalidChange, i)
		}
		for _, f := range []struct{ what, v string }{{"room URI", m.Room.String()}, {"user name", m.Member.User}, {"user domain", m.Member.Host}} {
			if err := fits(f.what, f.v); err != nil {
				return fmt.Errorf("store: set marks: %w", err)
			}
		}
		last[[2]string{m.Room.Key(), m.Member.Key()}] = i
	}
	args := make([]any, 0, 4*len(last))
	for i := range marks {
		m := &marks[i]
		if last[[2]string{m.Room.Key(), m.Member.Key()}] == i {
			args = append(args, m.Room.String(), m.Member.User, m.Member.Host, m.Seq)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	err := db.retrying(ctx, func(ctx context.Context) error {
		_, err := db.hq.setMarks.exec(ctx, db.db, args)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set %d marks: %w", len(marks), db.wrap(err))
	}
	return nil
}

// DeleteMarks deletes the marks of these rooms and members (Seq is not
// looked at): the member was caught up, or left.
func (db *DB) DeleteMarks(ctx context.Context, marks []Mark) error {
	if err := db.needHistory("delete marks"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	err := db.retrying(ctx, func(ctx context.Context) error {
		for _, m := range marks {
			if _, err := db.db.ExecContext(ctx, db.hq.deleteMark, m.Room.String(), m.Member.User, m.Member.Host); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete %d marks: %w", len(marks), db.wrap(err))
	}
	return nil
}

// Marks returns the marks of room.
func (db *DB) Marks(ctx context.Context, room imc.URI) ([]Mark, error) {
	if err := db.needHistory("marks"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	return db.readMarks(ctx, db.hq.marks, room.String())
}

// AllMarks returns every stored mark, for the daemon to know at start whom
// to catch up once they are reachable again.
func (db *DB) AllMarks(ctx context.Context) ([]Mark, error) {
	if err := db.needHistory("marks"); err != nil {
		return nil, err
	}
	return db.readMarks(ctx, db.hq.allMarks)
}

func (db *DB) readMarks(ctx context.Context, q string, args ...any) ([]Mark, error) {
	var out []Mark
	var bad int
	err := db.scan(ctx, db.db, q, args, 4, func(c []sql.RawBytes) {
		room, errRoom := imc.ParseURI(string(c[0]))
		member, errMember := imc.NewURI(string(c[1]), string(c[2]))
		seq, ok := parseInt(c[3])
		if errRoom != nil || errMember != nil || !ok {
			if bad++; bad <= maxLoggedRows {
				db.log.Warn("unreadable mark left out", logkey.Table, db.cfg.MarksTable,
					logkey.Row, string(c[0])+" "+string(c[1])+"@"+string(c[2])+" "+string(c[3]))
			}
			return
		}
		out = append(out, Mark{Room: room, Member: member, Seq: seq})
	})
	if err != nil {
		return nil, fmt.Errorf("store: read %q: %w", db.cfg.MarksTable, err)
	}
	return out, nil
}
