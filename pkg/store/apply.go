package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Apply commits changes in one transaction, in order, within ApplyTimeout.
// On error nothing is committed (unless the error wraps ErrInDoubt), and
// the error wraps one of: ErrUnavailable, ErrConflict, imc.ErrTooLong,
// ErrInvalidChange.
//
// Values longer than the tables' 64-character columns are refused before
// any SQL runs, so no engine gets the chance to truncate them. A failure of
// the connection before the commit is retried once on a fresh connection
// (the server has rolled the transaction back); a failure during the commit
// is not, since the commit may have happened: the error then wraps
// ErrInDoubt, and LoadRooms reads what the tables hold.
//
// Destroying a room also deletes its bans and moderation, and removing a
// member their voice, in the same transaction; with Config.History, also
// the room's history, topic and marks, and the member's mark.
func (db *DB) Apply(ctx context.Context, changes []imc.Change) error {
	if len(changes) == 0 {
		return nil
	}
	for i := range changes {
		if err := validate(&changes[i]); err != nil {
			return fmt.Errorf("store: apply %s: %w", changes[i], err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	err := db.retrying(ctx, func(ctx context.Context) error { return db.applyTx(ctx, changes) })
	if err != nil {
		return db.applyError(err)
	}
	return nil
}

// retrying runs fn, and once more on a fresh connection when it failed for
// want of the connection or the server (or a lock wait, a deadlock): the
// server has rolled the first attempt back. An error of COMMIT
// (*commitError) is not retried, since the commit may have happened;
// callers whose work is safe to do twice leave their commit errors bare.
func (db *DB) retrying(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if err = fn(ctx); err == nil {
			return nil
		}
		k := db.kind(err)
		if k == kindUnavailable {
			db.dropIdle()
		}
		var ce *commitError
		if errors.As(err, &ce) || (k != kindUnavailable && k != kindBusy) || ctx.Err() != nil {
			break
		}
		db.log.Debug("retrying on a fresh connection", logkey.Err, err)
	}
	return err
}

// applyTx runs changes in one transaction. An error of COMMIT itself,
// whose outcome is then unknown, is a *commitError.
func (db *DB) applyTx(ctx context.Context, changes []imc.Change) error {
	tx, err := db.db.BeginTxx(ctx, db.d.txOptions)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for i := range changes {
		if err := db.exec(ctx, tx, &changes[i]); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return &commitError{err}
	}
	return nil
}

// commitError marks an error of COMMIT.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

func (db *DB) applyError(err error) error {
	var ce *commitError
	switch {
	case errors.As(err, &ce) && db.kind(err) == kindUnavailable:
		return fmt.Errorf("store: %w: %w: %w", ErrUnavailable, ErrInDoubt, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store: %w: no answer within %v: %w", ErrUnavailable, db.cfg.ApplyTimeout, err)
	}
	return fmt.Errorf("store: %w", db.wrap(err))
}

// missingRowError is an UPDATE that found no row to update.
type missingRowError struct{}

func (e *missingRowError) Error() string { return "no such row in the table" }

// exec runs the statements of one change.
func (db *DB) exec(ctx context.Context, tx *sqlx.Tx, c *imc.Change) error {
	q := &db.q
	room := c.Room.String()
	var err error
	switch c.Op {
	case imc.OpCreateRoom:
		_, err = tx.ExecContext(ctx, q.insertRoom, c.Room.User, c.Room.Host, storedRoomFlags(c.RoomFlags))
	case imc.OpDeleteRoom:
		if _, err = tx.ExecContext(ctx, q.deleteRoomMembers, room); err != nil {
			break
		}
		var n int64
		if n, err = execCount(ctx, tx, q.deleteRoom, c.Room.User, c.Room.Host); err != nil || n > 0 || q.deleteRoomFold == "" {
			break
		}
		// The room row was written with other letter case (by hand, or
		// by another program): find it, and its members, ignoring case.
		if _, err = tx.ExecContext(ctx, q.deleteRoomMembersFold, room); err != nil {
			break
		}
		if n, err = execCount(ctx, tx, q.deleteRoomFold, c.Room.User, c.Room.Host); err == nil && n == 0 {
			db.log.Warn("room to delete was not in the table", logkey.Change, c.String())
		}
	case imc.OpUpdateRoom:
		err = db.update(ctx, tx, q.updateRoom, q.updateRoomFold, storedRoomFlags(c.RoomFlags), c.Room.User, c.Room.Host)
	case imc.OpAddMember:
		_, err = tx.ExecContext(ctx, q.insertMember, c.Member.User, c.Member.Host, room, storedMemberFlags(c.MemberFlags))
	case imc.OpUpdateMember:
		err = db.update(ctx, tx, q.updateMember, q.updateMemberFold, storedMemberFlags(c.MemberFlags), c.Member.User, c.Member.Host, room)
	case imc.OpRemoveMember:
		var n int64
		if n, err = execCount(ctx, tx, q.deleteMember, c.Member.User, c.Member.Host, room); err != nil || n > 0 || q.deleteMemberFold == "" {
			break
		}
		if n, err = execCount(ctx, tx, q.deleteMemberFold, c.Member.User, c.Member.Host, room); err == nil && n == 0 {
			// The member is gone already: the end state holds, so the
			// command need not fail.
			db.log.Warn("member to remove was not in the table", logkey.Change, c.String())
		}
	}
	if err == nil {
		err = db.moderate(ctx, tx, c)
	}
	if err == nil && db.cfg.History {
		err = db.forgetHistory(ctx, tx, c)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	return nil
}

// update runs an UPDATE, falling back to a case-insensitive match, and
// fails when no row matched: memory believes in a row the table lacks.
func (db *DB) update(ctx context.Context, tx *sqlx.Tx, exact, fold string, args ...any) error {
	n, err := execCount(ctx, tx, exact, args...)
	if err != nil || n > 0 {
		return err
	}
	if fold != "" {
		if n, err = execCount(ctx, tx, fold, args...); err != nil || n > 0 {
			return err
		}
	}
	return &missingRowError{}
}

func execCount(ctx context.Context, tx *sqlx.Tx, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// storedRoomFlags keeps the bits imc_rooms.flag holds; the native module's
// transient "deleted" mark (2) is never stored.
func storedRoomFlags(f imc.RoomFlags) int64 { return int64(f & imc.RoomPrivate) }

// storedMemberFlags keeps owner, admin and invited; the native module's
// transient marks (8 deleted, 16 skip) are never stored.
func storedMemberFlags(f imc.MemberFlags) int64 { return int64(f & imc.MemberStored) }

// validate refuses a malformed change and any value wider than its column,
// before any SQL runs: MySQL outside strict mode would truncate it, SQLite
// would store it whole, and either way the row would no longer say what
// memory says.
func validate(c *imc.Change) error {
	if c.Op < imc.OpCreateRoom || c.Op > imc.OpLast {
		return fmt.Errorf("%w: unknown op %d", ErrInvalidChange, c.Op)
	}
	if c.Room.User == "" || c.Room.Host == "" {
		return fmt.Errorf("%w: no room", ErrInvalidChange)
	}
	if err := fits("room name", c.Room.User); err != nil {
		return err
	}
	if err := fits("room domain", c.Room.Host); err != nil {
		return err
	}
	if c.Op != imc.OpDeleteRoom && c.Op != imc.OpUpdateRoom {
		// imc_members.room (and the moderation tables' room) holds
		// "sip:name@domain": a room whose URI does not fit could never have
		// a member, not even its owner.
		if err := fits("room URI", c.Room.String()); err != nil {
			return err
		}
	}
	if err := validModeration(c); err != nil {
		return err
	}
	switch c.Op {
	case imc.OpAddMember, imc.OpUpdateMember, imc.OpRemoveMember, imc.OpVoice, imc.OpDevoice, imc.OpBan, imc.OpUnban:
		if c.Member.User == "" || c.Member.Host == "" {
			return fmt.Errorf("%w: no member", ErrInvalidChange)
		}
		if err := fits("user name", c.Member.User); err != nil {
			return err
		}
		if err := fits("user domain", c.Member.Host); err != nil {
			return err
		}
	}
	return nil
}

func fits(what, v string) error {
	// URIs are ASCII (imc refuses anything else), so bytes are characters.
	if len(v) > imc.MaxFieldLen {
		return fmt.Errorf("%w: %s %q is %d characters; the column holds %d", imc.ErrTooLong, what, v, len(v), imc.MaxFieldLen)
	}
	return nil
}
