package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PurgeHistory deletes the lines older than olderThan (zero: none by age)
// and, in each room, all but the newest keepPerRoom lines (0: none by
// count). It deletes in statements of at most batch rows (0:
// DefaultPurgeBatch), each its own transaction within ApplyTimeout, so that
// no statement holds locks for long and the daemon's history writer is
// never kept waiting for more than one of them. It returns how many lines
// it deleted, also on error. Cancelling ctx stops it between statements.
//
// Rooms over keepPerRoom are found from each room's lowest and highest seq
// (one pass over the (room, seq) index), then trimmed one by one.
func (db *DB) PurgeHistory(ctx context.Context, keepPerRoom int, olderThan time.Time, batch int) (int, error) {
	if err := db.needHistory("purge history"); err != nil {
		return 0, err
	}
	if batch <= 0 {
		batch = DefaultPurgeBatch
	}
	deleted := 0
	if !olderThan.IsZero() {
		n, err := db.deleteChunks(ctx, db.hq.purgeAge, batch, olderThan.UnixMilli())
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("store: purge history older than %s: %w", olderThan.Format(time.RFC3339), err)
		}
	}
	if keepPerRoom <= 0 {
		return deleted, nil
	}
	type span struct {
		room     string
		min, max int64
	}
	var over []span
	rows, err := db.db.QueryContext(ctx, db.hq.purgeCandidates, keepPerRoom)
	if err != nil {
		return deleted, fmt.Errorf("store: purge history: %w", db.wrap(err))
	}
	for rows.Next() {
		var s span
		if err := rows.Scan(&s.room, &s.min, &s.max); err != nil {
			rows.Close()
			return deleted, fmt.Errorf("store: purge history: %w", db.wrap(err))
		}
		over = append(over, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return deleted, fmt.Errorf("store: purge history: %w", db.wrap(err))
	}
	for _, s := range over {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		// The newest line to delete: the one after the keepPerRoom newest.
		var cutoff int64
		qctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
		err := db.db.QueryRowContext(qctx, db.hq.purgeCutoff, s.room, keepPerRoom).Scan(&cutoff)
		cancel()
		if errors.Is(err, sql.ErrNoRows) {
			continue // gaps: fewer lines than the seqs span
		}
		if err != nil {
			return deleted, fmt.Errorf("store: purge history of %s: %w", s.room, db.wrap(err))
		}
		n, err := db.deleteChunks(ctx, db.hq.purgeRoom, batch, s.room, cutoff)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("store: purge history of %s: %w", s.room, err)
		}
	}
	return deleted, nil
}

// deleteChunks runs q (a deleteSome statement: args, then the limit) until
// it deletes fewer than batch rows.
func (db *DB) deleteChunks(ctx context.Context, q string, batch int, args ...any) (int, error) {
	args = append(args, batch)
	deleted := 0
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		qctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
		res, err := db.db.ExecContext(qctx, q, args...)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		cancel()
		if err != nil {
			return deleted, db.wrap(err)
		}
		deleted += int(n)
		if n < int64(batch) {
			return deleted, nil
		}
	}
}
