package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// EventKeyLen is the length of an event key: 32 hex digits.
const EventKeyLen = 32

// EventKey returns the key under which an event is applied once: the first
// 128 bits of SHA-256 over Call-ID, CSeq and From tag (a NUL after each,
// so that no two triples give one input), as 32 lower-case hex digits.
//
// A fixed width makes the key a CHAR(32) primary key on every engine,
// whatever the length of a Call-ID (which SIP does not bound, and which may
// hold bytes no collation agrees on); plain ASCII compares alike on every
// engine and reads in any SQL shell. 128 bits make an accidental collision
// of two events (which would drop the second) negligible: about 1 in 10^20
// for a billion keys in the window.
func EventKey(callID, cseq, fromTag string) string {
	h := sha256.New()
	for _, p := range []string{callID, cseq, fromTag} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:EventKeyLen/2])
}

func validEventKey(k string) bool {
	if len(k) != EventKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// eventQueries are the statements of the events table, built at Open when
// Config.Events is set.
type eventQueries struct {
	insert, claimed *multiRow
	claimOf, has    string
	purge, probe    string
}

func buildEventQueries(d *dialect, table string) eventQueries {
	e := d.table(table)
	return eventQueries{
		insert: newMultiRow(d.bind, d.insertIgnore+e+" (event_key, claim, time_ms) VALUES ", 3, d.ignoreSuffix("event_key")),
		// The keys of a list that carry a claim (the first argument).
		claimed: newInList(d.bind, "SELECT event_key FROM "+e+" WHERE claim = ? AND event_key IN (", ")"),
		claimOf: rebind(d, "SELECT claim FROM "+e+" WHERE event_key = ?"),
		has:     rebind(d, "SELECT COUNT(*) FROM "+e+" WHERE event_key = ?"),
		purge:   rebind(d, d.deleteSome(e, "event_key", "time_ms < ?", "time_ms")),
		probe:   "SELECT event_key, claim, time_ms FROM " + e + " WHERE 1 = 0",
	}
}

func (db *DB) needEvents(what string) error {
	if !db.cfg.Events {
		return fmt.Errorf("store: %s: %w (the events table is off)", what, ErrNotEnabled)
	}
	return nil
}

// newClaim returns a random number that marks the rows one call inserts,
// so that the call can tell its own rows (from an attempt whose commit it
// did not hear of) from another instance's.
func newClaim() int64 { return rand.Int64() }

// ApplyOnce commits key (see EventKey) and changes in one transaction,
// within ApplyTimeout. If key is stored already, by another imcd that
// applied the same event, nothing changes and applied is false, with no
// error. Several stores may call it for one key at once: exactly one
// applies.
//
// Unlike Apply, a failure during COMMIT is resolved rather than reported:
// the attempt is made again on a fresh connection and, finding the key,
// tells by its claim whether the first attempt committed (applied is then
// true). ErrInDoubt is returned only when that second attempt cannot reach
// the database either. Other errors are those of Apply.
func (db *DB) ApplyOnce(ctx context.Context, key string, changes []imc.Change) (applied bool, err error) {
	if err := db.needEvents("apply once"); err != nil {
		return false, err
	}
	if !validEventKey(key) {
		return false, fmt.Errorf("store: apply once: %w: event key %q is not from EventKey", ErrInvalidChange, key)
	}
	for i := range changes {
		if err := validate(&changes[i]); err != nil {
			return false, fmt.Errorf("store: apply once %s: %w", changes[i], err)
		}
	}
	claim, now := newClaim(), time.Now().UnixMilli()
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	doubt := false
	err = db.retrying(ctx, func(ctx context.Context) error {
		var err error
		applied, err = db.applyOnceTx(ctx, key, claim, now, changes)
		var ce *commitError
		if errors.As(err, &ce) {
			// Unlike Apply's, this commit may be tried again: the claim
			// tells the retry whether it landed. So it goes bare.
			doubt = true
			return fmt.Errorf("commit: %w", ce.err)
		}
		return err
	})
	if err == nil {
		return applied, nil
	}
	if err = db.applyError(err); doubt && errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrInDoubt, err)
	}
	return false, err
}

func (db *DB) applyOnceTx(ctx context.Context, key string, claim, now int64, changes []imc.Change) (bool, error) {
	tx, err := db.db.BeginTxx(ctx, db.d.txOptions)
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, db.eq.insert.sql(1), key, claim, now)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return false, fmt.Errorf("event %s: %w", key, err)
	}
	if n == 0 {
		// Taken: the INSERT waited for the transaction that holds the key
		// to end, so the row is committed and readable now.
		var by int64
		if err := tx.QueryRowContext(ctx, db.eq.claimOf, key).Scan(&by); err != nil {
			return false, fmt.Errorf("event %s: %w", key, err)
		}
		return by == claim, nil
	}
	for i := range changes {
		if err := db.exec(ctx, tx, &changes[i]); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, &commitError{err}
	}
	return true, nil
}

// MarkEvents stores many event keys at once, for events with no changes
// (chat lines), and reports which were new: fresh[i] is true when keys[i]
// was stored by this call, false when it was there already (or appears
// earlier in keys). It is one INSERT per 256 keys, plus one SELECT when
// some key was taken, within ApplyTimeout; it is retried once on a fresh
// connection, and the claim it writes makes the retry's answer exact.
func (db *DB) MarkEvents(ctx context.Context, keys []string) (fresh []bool, err error) {
	if err := db.needEvents("mark events"); err != nil {
		return nil, err
	}
	first := make(map[string]int, len(keys))
	for i, k := range keys {
		if !validEventKey(k) {
			return nil, fmt.Errorf("store: mark events: %w: event key %q is not from EventKey", ErrInvalidChange, k)
		}
		if _, dup := first[k]; !dup {
			first[k] = i
		}
	}
	// One order for every caller, so that two instances inserting keys in
	// common take their locks in the same order instead of deadlocking.
	unique := make([]string, 0, len(first))
	for k := range first {
		unique = append(unique, k)
	}
	slices.Sort(unique)
	claim, now := newClaim(), time.Now().UnixMilli()
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	var mine map[string]bool
	err = db.retrying(ctx, func(ctx context.Context) error {
		var err error
		mine, err = db.markEvents(ctx, unique, claim, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: mark %d events: %w", len(keys), db.wrap(err))
	}
	fresh = make([]bool, len(keys))
	for i, k := range keys {
		fresh[i] = first[k] == i && (mine == nil || mine[k])
	}
	return fresh, nil
}

// markEvents inserts keys with claim; mine is nil when every key was new,
// else the keys that carry claim.
func (db *DB) markEvents(ctx context.Context, keys []string, claim, now int64) (mine map[string]bool, err error) {
	// Every row carries the same claim and time: box them once.
	c, t := any(claim), any(now)
	args := make([]any, 0, 3*len(keys))
	for _, k := range keys {
		args = append(args, k, c, t)
	}
	inserted, err := db.eq.insert.exec(ctx, db.db, args)
	if err != nil {
		return nil, err
	}
	if inserted == int64(len(keys)) {
		return nil, nil
	}
	mine = make(map[string]bool, inserted)
	for rest := keys; len(rest) > 0; {
		n := min(len(rest), historyChunkLines)
		args = append(args[:0], c)
		for _, k := range rest[:n] {
			args = append(args, k)
		}
		rows, err := db.db.QueryContext(ctx, db.eq.claimed.sql(n), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			mine[strings.TrimRight(k, " ")] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return mine, nil
}

// HasEvent reports whether key is stored: the event was applied by some
// imcd within the window.
func (db *DB) HasEvent(ctx context.Context, key string) (bool, error) {
	if err := db.needEvents("has event"); err != nil {
		return false, err
	}
	n, err := db.queryInt(ctx, db.eq.has, key)
	if err != nil {
		return false, fmt.Errorf("store: has event %s: %w", key, err)
	}
	return n > 0, nil
}

// PurgeEvents deletes the keys stored before olderThan (now minus the
// window, DefaultEventsWindow unless configured otherwise), in statements
// of at most batch rows (0: DefaultPurgeBatch). It returns how many it
// deleted, also on error.
func (db *DB) PurgeEvents(ctx context.Context, olderThan time.Time, batch int) (int, error) {
	if err := db.needEvents("purge events"); err != nil {
		return 0, err
	}
	if batch <= 0 {
		batch = DefaultPurgeBatch
	}
	n, err := db.deleteChunks(ctx, db.eq.purge, batch, olderThan.UnixMilli())
	if err != nil {
		return n, fmt.Errorf("store: purge events older than %s: %w", olderThan.Format(time.RFC3339), err)
	}
	return n, nil
}
