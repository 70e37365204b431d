package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// HistoryKind says what a history line records. The store keeps it and
// does not interpret it.
type HistoryKind uint8

// History kinds.
const (
	// HistoryChat is a chat line a member sent to the room.
	HistoryChat HistoryKind = iota
	// HistoryTopic is a change of the room's topic; the body is the topic.
	HistoryTopic
	// HistoryNotice is a room event told to the members (a join, a
	// departure), worded by the daemon.
	HistoryNotice
)

// Limits of the values the history tables hold.
const (
	// MaxBodyLen is the longest body or topic stored, in bytes.
	MaxBodyLen = 1 << 20
	// maxTextLen is the width of the sender, set_by and content_type
	// columns.
	maxTextLen = 255
)

// Batch limits of AppendHistory: the lines of one INSERT, and their bytes,
// well under every engine's limits on placeholders (SQLite 32766) and on a
// statement's size (MySQL's max_allowed_packet, 16 MB by default).
const (
	historyChunkLines = 256
	historyChunkBytes = 1 << 20
)

// HistoryLine is one line of a room's history.
type HistoryLine struct {
	// Room is stored as Room.String(), as imc_members.room holds it. The
	// history is keyed by that text exactly: give the room's URI as
	// memory spells it (from the rooms row), as Apply's changes do.
	Room imc.URI
	// Seq numbers the room's lines from 1. The room's owner (the daemon's
	// shard) assigns it; LastSeqs says where to go on from at start.
	Seq int64
	// Kind says what the line records; the store does not interpret it.
	Kind HistoryKind
	// Sender is the sender's URI as the daemon writes it: printable ASCII,
	// at most 255 bytes.
	Sender string
	// Time is stored in milliseconds since the Unix epoch.
	Time time.Time
	// ContentType is printable ASCII, at most 255 bytes.
	ContentType string
	// Body is kept byte for byte (invalid UTF-8 and NUL included), at most
	// MaxBodyLen bytes.
	Body []byte
}

// historyQueries are the statements of the history, topics and marks
// tables, built at Open when Config.History is set.
type historyQueries struct {
	insert                                   *multiRow
	lastSeqs, lastSeq, after, last, count    string
	missed, countMissed                      string
	deleteRoom, purgeAge, purgeRoom          string
	purgeCandidates, purgeCutoff             string
	setTopic                                 *multiRow
	deleteTopic, topics                      string
	setMarks                                 *multiRow
	marks, allMarks, deleteMark, deleteMarks string
	probeHistory, probeTopics, probeMarks    string
}

func buildHistoryQueries(d *dialect, cfg *Config) historyQueries {
	h, tp, m := d.table(cfg.HistoryTable), d.table(cfg.TopicsTable), d.table(cfg.MarksTable)
	re := func(q string) string { return rebind(d, q) }
	cols := "seq, kind, sender, time_ms, content_type, body"
	eq := func(col string) string { return col + " = ?" }
	if d.foldEq != nil {
		eq = d.foldEq
	}
	return historyQueries{
		insert: newMultiRow(d.bind, d.insertIgnore+h+" (room, "+cols+") VALUES ", 7, d.ignoreSuffix("room, seq")),
		// Ordered by the key's leading column, so that each engine can
		// read MAX per group off the (room, seq) index.
		lastSeqs:        "SELECT room, MAX(seq) FROM " + h + " GROUP BY room",
		lastSeq:         re("SELECT MAX(seq) FROM " + h + " WHERE room = ?"),
		after:           re("SELECT " + cols + " FROM " + h + " WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?"),
		last:            re("SELECT " + cols + " FROM " + h + " WHERE room = ? AND seq > ? ORDER BY seq DESC LIMIT ?"),
		count:           re("SELECT COUNT(*) FROM " + h + " WHERE room = ? AND seq > ?"),
		missed:          re("SELECT " + cols + " FROM " + h + " WHERE room = ? AND seq > ? AND seq <= ? AND NOT (" + eq("sender") + ") ORDER BY seq DESC LIMIT ?"),
		countMissed:     re("SELECT COUNT(*) FROM " + h + " WHERE room = ? AND seq > ? AND seq <= ? AND NOT (" + eq("sender") + ")"),
		deleteRoom:      re("DELETE FROM " + h + " WHERE room = ?"),
		purgeAge:        re(d.deleteSome(h, "id", "time_ms < ?", "time_ms")),
		purgeRoom:       re(d.deleteSome(h, "id", "room = ? AND seq <= ?", "seq")),
		purgeCandidates: re("SELECT room, MIN(seq), MAX(seq) FROM " + h + " GROUP BY room HAVING MAX(seq) - MIN(seq) >= ?"),
		purgeCutoff:     re("SELECT seq FROM " + h + " WHERE room = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"),

		setTopic: newMultiRow(d.bind, "INSERT INTO "+tp+" (room, topic, set_by, time_ms) VALUES ", 4,
			d.upsertSuffix("room", "topic", "set_by", "time_ms")),
		deleteTopic: re("DELETE FROM " + tp + " WHERE room = ?"),
		topics:      "SELECT room, topic, set_by, time_ms FROM " + tp,

		setMarks: newMultiRow(d.bind, "INSERT INTO "+m+" (room, username, domain, seq) VALUES ", 4,
			d.upsertSuffix("room, username, domain", "seq")),
		marks:       re("SELECT room, username, domain, seq FROM " + m + " WHERE room = ?"),
		allMarks:    "SELECT room, username, domain, seq FROM " + m,
		deleteMark:  re("DELETE FROM " + m + " WHERE room = ? AND " + eq("username") + " AND " + eq("domain")),
		deleteMarks: re("DELETE FROM " + m + " WHERE room = ?"),

		probeHistory: "SELECT id, room, " + cols + " FROM " + h + " WHERE 1 = 0",
		probeTopics:  "SELECT room, topic, set_by, time_ms FROM " + tp + " WHERE 1 = 0",
		probeMarks:   "SELECT room, username, domain, seq FROM " + m + " WHERE 1 = 0",
	}
}

func (db *DB) needHistory(what string) error {
	if !db.cfg.History {
		return fmt.Errorf("store: %s: %w (history = off)", what, ErrNotEnabled)
	}
	return nil
}

// AppendHistory stores lines, in one multi-row INSERT per 256 lines (or 1
// MiB), all in one transaction when there are several. A line whose room
// and seq are stored already is skipped, so a batch may be appended again
// after any error, an ErrInDoubt included; written counts the lines that
// were new. It runs within ApplyTimeout and is retried once on a fresh
// connection when the connection fails.
//
// A malformed line (no room, seq < 1, a sender or content type that is not
// printable ASCII or longer than 255 bytes, a body over MaxBodyLen) fails
// the whole batch with ErrInvalidChange or imc.ErrTooLong before any SQL.
func (db *DB) AppendHistory(ctx context.Context, lines []HistoryLine) (written int, err error) {
	if err := db.needHistory("append history"); err != nil {
		return 0, err
	}
	if len(lines) == 0 {
		return 0, nil
	}
	for i := range lines {
		if err := checkLine(&lines[i]); err != nil {
			return 0, fmt.Errorf("store: append history: line %d (%s seq %d): %w", i, lines[i].Room, lines[i].Seq, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	err = db.retrying(ctx, func(ctx context.Context) error {
		written = 0
		if n := chunkEnd(lines); n == len(lines) {
			written, err = db.insertLines(ctx, db.db, lines)
			return err
		}
		tx, err := db.db.BeginTxx(ctx, db.d.txOptions)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for rest := lines; len(rest) > 0; {
			n := chunkEnd(rest)
			w, err := db.insertLines(ctx, tx, rest[:n])
			if err != nil {
				return err
			}
			written += w
			rest = rest[n:]
		}
		return tx.Commit()
	})
	if err != nil {
		return 0, fmt.Errorf("store: append %d history lines: %w", len(lines), db.wrap(err))
	}
	return written, nil
}

// chunkEnd returns how many of lines go in the first INSERT.
func chunkEnd(lines []HistoryLine) int {
	size := 0
	for i := range lines {
		size += len(lines[i].Body) + len(lines[i].Sender) + len(lines[i].ContentType) + 64
		if i == historyChunkLines || i > 0 && size > historyChunkBytes {
			return i
		}
	}
	return len(lines)
}

// execer is a pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertLines writes lines in one INSERT. A room, sender or content type
// equal to the line before's reuses that line's argument: a burst of one
// room's chat then costs no string and no boxing for them.
func (db *DB) insertLines(ctx context.Context, on execer, lines []HistoryLine) (int, error) {
	args := make([]any, 0, 7*len(lines))
	var room, sender, ctype any
	for i := range lines {
		l := &lines[i]
		if i == 0 || l.Room != lines[i-1].Room {
			room = l.Room.String()
		}
		if i == 0 || l.Sender != lines[i-1].Sender {
			sender = l.Sender
		}
		if i == 0 || l.ContentType != lines[i-1].ContentType {
			ctype = l.ContentType
		}
		body := l.Body
		if body == nil {
			body = []byte{} // NOT NULL: a nil slice would be sent as NULL
		}
		args = append(args, room, l.Seq, int64(l.Kind), sender, l.Time.UnixMilli(), ctype, body)
	}
	res, err := on.ExecContext(ctx, db.hq.insert.sql(len(lines)), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func checkLine(l *HistoryLine) error {
	switch {
	case l.Room.User == "" || l.Room.Host == "":
		return fmt.Errorf("%w: no room", ErrInvalidChange)
	case l.Seq < 1:
		return fmt.Errorf("%w: seq %d; sequence numbers start at 1", ErrInvalidChange, l.Seq)
	case len(l.Body) > MaxBodyLen:
		return fmt.Errorf("%w: body of %d bytes; at most %d are stored", imc.ErrTooLong, len(l.Body), MaxBodyLen)
	}
	if err := fits("room URI", l.Room.String()); err != nil {
		return err
	}
	if err := checkText("sender", l.Sender); err != nil {
		return err
	}
	return checkText("content type", l.ContentType)
}

// checkText admits printable ASCII up to the columns' 255 bytes: anything
// else would be stored differently by each engine, or refused by some.
func checkText(what, s string) error {
	if len(s) > maxTextLen {
		return fmt.Errorf("%w: %s of %d bytes; the column holds %d", imc.ErrTooLong, what, len(s), maxTextLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: %s %q has byte 0x%02x; printable ASCII only", ErrInvalidChange, what, s, c)
		}
	}
	return nil
}

// LastSeqs returns each room's highest stored seq, keyed by room.Key(),
// for the daemon to go on numbering at start. Room columns that are no SIP
// URI are logged and left out.
func (db *DB) LastSeqs(ctx context.Context) (map[string]int64, error) {
	if err := db.needHistory("last seqs"); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var bad int
	err := db.scan(ctx, db.db, db.hq.lastSeqs, nil, 2, func(c []sql.RawBytes) {
		u, err := imc.ParseURI(string(c[0]))
		seq, ok := parseInt(c[1])
		if err != nil || !ok {
			if bad++; bad <= maxLoggedRows {
				db.log.Warn("history of an unreadable room column left out", logkey.Table, db.cfg.HistoryTable, logkey.Row, string(c[0]))
			}
			return
		}
		// Spellings that differ in letter case are one room.
		if seq > out[u.Key()] {
			out[u.Key()] = seq
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: last seqs of %q: %w", db.cfg.HistoryTable, err)
	}
	return out, nil
}

// LastSeq returns room's highest stored seq, 0 when it has no line; for a
// room whose owner changed (another imcd instance wrote it meanwhile).
func (db *DB) LastSeq(ctx context.Context, room imc.URI) (int64, error) {
	if err := db.needHistory("last seq"); err != nil {
		return 0, err
	}
	seq, err := db.queryInt(ctx, db.hq.lastSeq, room.String())
	if err != nil {
		return 0, fmt.Errorf("store: last seq of %s: %w", room, err)
	}
	return seq, nil
}

// History returns up to limit lines of room with seq > afterSeq, oldest
// first: the lines a member missed after the last one delivered to them.
func (db *DB) History(ctx context.Context, room imc.URI, afterSeq int64, limit int) ([]HistoryLine, error) {
	return db.readLines(ctx, "history", db.hq.after, room, afterSeq, limit, false)
}

// LastLines returns the newest n lines of room with seq > afterSeq, oldest
// first: with afterSeq 0, what #history and a join replay show; with a
// member's mark, the most recent of the lines they missed.
func (db *DB) LastLines(ctx context.Context, room imc.URI, afterSeq int64, n int) ([]HistoryLine, error) {
	return db.readLines(ctx, "last lines", db.hq.last, room, afterSeq, n, true)
}

// CountHistory counts the lines of room with seq > afterSeq: how many a
// member missed, for the first line of a catch-up.
func (db *DB) CountHistory(ctx context.Context, room imc.URI, afterSeq int64) (int64, error) {
	if err := db.needHistory("count history"); err != nil {
		return 0, err
	}
	n, err := db.queryInt(ctx, db.hq.count, room.String(), afterSeq)
	if err != nil {
		return 0, fmt.Errorf("store: count history of %s: %w", room, err)
	}
	return n, nil
}

// MissedLines returns the newest n lines of room with afterSeq < seq ≤
// upTo that sender did not say, oldest first: what a member who was
// unreachable missed between the last line delivered to them and the first
// one still waiting for them, for their catch-up. sender is the member's
// URI as the daemon writes senders (URI.String()).
func (db *DB) MissedLines(ctx context.Context, room imc.URI, sender string, afterSeq, upTo int64, n int) ([]HistoryLine, error) {
	return db.readLines(ctx, "missed lines", db.hq.missed, room, afterSeq, n, true, upTo, sender)
}

// CountMissed counts the lines MissedLines would choose from: the first
// line of a catch-up says how many there were.
func (db *DB) CountMissed(ctx context.Context, room imc.URI, sender string, afterSeq, upTo int64) (int64, error) {
	if err := db.needHistory("count missed"); err != nil {
		return 0, err
	}
	n, err := db.queryInt(ctx, db.hq.countMissed, room.String(), afterSeq, upTo, sender)
	if err != nil {
		return 0, fmt.Errorf("store: count missed lines of %s: %w", room, err)
	}
	return n, nil
}

// queryInt runs q, which answers one integer (NULL counts as 0), within
// ApplyTimeout.
func (db *DB) queryInt(ctx context.Context, q string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	var n sql.NullInt64
	if err := db.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, db.wrap(err)
	}
	return n.Int64, nil
}

// readLines runs q with room, afterSeq, the extra arguments, then limit.
func (db *DB) readLines(ctx context.Context, what, q string, room imc.URI, afterSeq int64, limit int, reverse bool, extra ...any) ([]HistoryLine, error) {
	if err := db.needHistory(what); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	args := append(append([]any{room.String(), afterSeq}, extra...), limit)
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s of %s: %w", what, room, db.wrap(err))
	}
	defer rows.Close()
	var out []HistoryLine
	for rows.Next() {
		l := HistoryLine{Room: room}
		var kind, ms int64
		if err := rows.Scan(&l.Seq, &kind, &l.Sender, &ms, &l.ContentType, &l.Body); err != nil {
			return nil, fmt.Errorf("store: %s of %s: %w", what, room, db.wrap(err))
		}
		l.Kind, l.Time = HistoryKind(kind), time.UnixMilli(ms)
		if l.Body == nil {
			l.Body = []byte{}
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s of %s: %w", what, room, db.wrap(err))
	}
	if reverse {
		slices.Reverse(out)
	}
	return out, nil
}
