package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// Parallel member scans: a members table whose ids span at least
// parallelMinSpan is read in loadParts id ranges at once, one connection
// each. On a server the scan of a large table is bound by the server (its
// disk, its buffer pool), and several range scans keep more of it busy;
// measured on MariaDB, 1M rows took 2.0s in four ranges against 3.3s in one.
const (
	loadParts       = 4
	parallelMinSpan = 200000
)

// Load reads every room and its members, rooms in the order they were
// created and members in the order they joined (owner first), with their
// bans and moderation.
//
// Rows that cannot be used are logged with the row and skipped, never
// fatal: unknown flag bits or the native "deleted" mark, values over 64
// characters, names that are not valid SIP user parts or hosts, duplicate
// rooms, members whose room is missing. A second owner in a room is kept as
// a plain member. Skipped rows stay in the tables for the operator to fix.
func (db *DB) Load(ctx context.Context) ([]*imc.Room, error) {
	start := time.Now()
	l := newLoader(db.log)
	if err := db.scan(ctx, db.db, db.q.loadRooms, nil, 3, l.room); err != nil {
		return nil, fmt.Errorf("store: load %q: %w", db.cfg.RoomsTable, err)
	}
	l.indexColumns()
	parts, err := db.loadMembers(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("store: load %q: %w", db.cfg.MembersTable, err)
	}
	rooms := l.build(parts)
	if err := db.loadModeration(ctx, db.db, rooms); err != nil {
		return nil, fmt.Errorf("store: load moderation: %w", err)
	}
	db.log.Info("rooms loaded", logkey.Rooms, len(rooms), logkey.Members, l.members, logkey.Skipped, l.skipped,
		logkey.Elapsed, time.Since(start).Round(time.Millisecond))
	if logged := int(l.logged.Load()); l.skipped > logged {
		db.log.Warn("more odd rows were skipped than logged", logkey.Skipped, l.skipped, logkey.Logged, logged)
	}
	return rooms, nil
}

// loadMembers reads the members table, in id ranges at once when it is
// large, and returns the parts in id order.
func (db *DB) loadMembers(ctx context.Context, l *loader) ([]*memberPart, error) {
	bounds, err := db.memberRanges(ctx)
	if err != nil {
		return nil, err
	}
	if bounds == nil {
		p := l.newPart()
		return []*memberPart{p}, db.scan(ctx, db.db, db.q.loadMembers, nil, 4, p.member)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]*memberPart, len(bounds)-1)
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i := range parts {
		parts[i] = l.newPart()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = db.scan(ctx, db.db, db.q.loadMembersRange, []any{bounds[i], bounds[i+1]}, 4, parts[i].member); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// memberRanges returns the bounds of the id ranges to read at once
// (range i is bounds[i] <= id < bounds[i+1]), or nil for one plain scan.
func (db *DB) memberRanges(ctx context.Context) ([]int64, error) {
	if db.d.name == dburl.SQLite {
		return nil, nil // one connection: nothing to gain
	}
	var lo, hi sql.NullInt64
	if err := db.db.QueryRowContext(ctx, db.q.memberIDSpan).Scan(&lo, &hi); err != nil {
		return nil, db.wrap(err)
	}
	if !lo.Valid || hi.Int64-lo.Int64 < db.parallelSpan {
		return nil, nil
	}
	bounds := make([]int64, loadParts+1)
	for i := range bounds {
		bounds[i] = lo.Int64 + (hi.Int64-lo.Int64)*int64(i)/loadParts
	}
	bounds[loadParts] = hi.Int64 + 1
	return bounds, nil
}

// queryer is a pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scan streams the rows of q, handing each row's columns to fn as bytes
// that are only valid during the call (no allocation per column).
func (db *DB) scan(ctx context.Context, on queryer, q string, args []any, ncol int, fn func(cols []sql.RawBytes)) error {
	rows, err := on.QueryContext(ctx, q, args...)
	if err != nil {
		return db.wrap(err)
	}
	defer rows.Close()
	cols := make([]sql.RawBytes, ncol)
	dest := make([]any, ncol)
	for i := range cols {
		dest[i] = &cols[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return db.wrap(err)
		}
		fn(cols)
	}
	if err := rows.Err(); err != nil {
		return db.wrap(err)
	}
	return nil
}
