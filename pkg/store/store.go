package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// Store persists IMC state. Implementations are safe for concurrent use.
type Store interface {
	// Load reads every room and member. Odd rows are logged (with the row)
	// and skipped.
	Load(ctx context.Context) ([]*imc.Room, error)
	// LoadRooms reads the current rows of the given rooms, handled as Load
	// handles them; a room the tables lack maps to nil. The daemon calls it
	// after ErrInDoubt, and may call Load again for a reload.
	LoadRooms(ctx context.Context, rooms []imc.URI) (map[string]*imc.Room, error)
	// Apply commits one command's changes in one transaction, in order.
	Apply(ctx context.Context, changes []imc.Change) error
	// Ping reports whether the database is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error
}

// HistoryStore keeps rooms' history, topics and catch-up marks
// (Config.History). Implementations are safe for concurrent use.
type HistoryStore interface {
	AppendHistory(ctx context.Context, lines []HistoryLine) (written int, err error)
	LastSeqs(ctx context.Context) (map[string]int64, error)
	LastSeq(ctx context.Context, room imc.URI) (int64, error)
	History(ctx context.Context, room imc.URI, afterSeq int64, limit int) ([]HistoryLine, error)
	LastLines(ctx context.Context, room imc.URI, afterSeq int64, n int) ([]HistoryLine, error)
	CountHistory(ctx context.Context, room imc.URI, afterSeq int64) (int64, error)
	MissedLines(ctx context.Context, room imc.URI, sender string, afterSeq, upTo int64, n int) ([]HistoryLine, error)
	CountMissed(ctx context.Context, room imc.URI, sender string, afterSeq, upTo int64) (int64, error)
	PurgeHistory(ctx context.Context, keepPerRoom int, olderThan time.Time, batch int) (int, error)
	ForgetRoom(ctx context.Context, room imc.URI) error
	SetTopic(ctx context.Context, t Topic) error
	Topics(ctx context.Context) (map[string]Topic, error)
	SetMarks(ctx context.Context, marks []Mark) error
	DeleteMarks(ctx context.Context, marks []Mark) error
	Marks(ctx context.Context, room imc.URI) ([]Mark, error)
	AllMarks(ctx context.Context) ([]Mark, error)
}

// EventLog applies broker events once across several imcd (Config.Events).
// Implementations are safe for concurrent use.
type EventLog interface {
	ApplyOnce(ctx context.Context, key string, changes []imc.Change) (applied bool, err error)
	MarkEvents(ctx context.Context, keys []string) (fresh []bool, err error)
	HasEvent(ctx context.Context, key string) (bool, error)
	PurgeEvents(ctx context.Context, olderThan time.Time, batch int) (int, error)
}

var (
	_ Store        = (*DB)(nil)
	_ HistoryStore = (*DB)(nil)
	_ EventLog     = (*DB)(nil)
)

// Errors. Every error the package returns wraps at most one of these (plus
// imc.ErrTooLong for over-long values), with the details in its message.
var (
	// ErrUnavailable: the database could not be reached or did not answer in
	// time, or refused for a passing reason (lock wait, deadlock, read-only,
	// too many connections, disk full). Nothing was committed unless
	// ErrInDoubt is wrapped too. The pool reconnects by itself; the next
	// call may succeed.
	ErrUnavailable = errors.New("database unavailable")
	// ErrInDoubt: the connection failed while the commit was under way, so
	// the change set may or may not be in the tables. Always wrapped together
	// with ErrUnavailable.
	ErrInDoubt = errors.New("commit outcome unknown")
	// ErrConflict: the tables disagree with the change: a unique key is taken
	// (room or member exists already), or a row to update is missing. The
	// transaction was rolled back.
	ErrConflict = errors.New("conflict with the stored rows")
	// ErrBadURL: the db_url does not parse. It is dburl.ErrBadURL.
	ErrBadURL = dburl.ErrBadURL
	// ErrBadConfig: a setting other than the URL is unusable (a table name
	// that is not a plain SQL identifier, for instance).
	ErrBadConfig = errors.New("bad store configuration")
	// ErrNoTables: a table is missing. Create it with imcd's create_tables
	// option or the scripts in sql/.
	ErrNoTables = errors.New("table missing")
	// ErrVersion: the version table gives a table another version than the
	// one imcd reads and writes (2 for both imc tables, 1 for the history,
	// topics, marks, events, bans and moderation tables).
	ErrVersion = errors.New("unsupported table version")
	// ErrInvalidChange: a change, history line, mark or event key is
	// malformed (unknown op, no room, no member, a sender that is not
	// printable ASCII, a key not made by EventKey); a bug in the caller.
	// Nothing was written.
	ErrInvalidChange = errors.New("invalid change")
	// ErrNotEnabled: a history or events method was called on a store
	// whose Config does not enable those tables.
	ErrNotEnabled = errors.New("not enabled in the store's configuration")
)

// Table versions in OpenSIPS's version table for the schema imcd uses:
// OpenSIPS's for the imc tables, imcd's own for the tables it adds.
const (
	roomsVersion   = 2
	membersVersion = 2
	historyVersion = 1
	topicsVersion  = 1
	marksVersion   = 1
	eventsVersion  = 1
	bansVersion    = 1
	modVersion     = 1
)

// DB is a Store on one SQL database.
type DB struct {
	db      *sqlx.DB
	d       *dialect
	cfg     Config
	log     *slog.Logger
	q       queries
	mq      moderationQueries
	hq      historyQueries // when cfg.History
	eq      eventQueries   // when cfg.Events
	url     string         // redacted, for messages
	maxIdle int

	// parallelSpan is the id span from which Load reads members in
	// ranges at once (parallelMinSpan; tests lower it).
	parallelSpan int64
}

// Open connects to cfg.URL, checks (or with cfg.CreateTables, creates) the
// tables, and returns the store. A database that cannot be reached gives an
// error wrapping ErrUnavailable; missing tables give ErrNoTables.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	db, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if db.cfg.CreateTables {
		if err := db.CreateTables(ctx); err != nil {
			db.db.Close()
			return nil, err
		}
	}
	if err := db.checkSchema(ctx); err != nil {
		db.db.Close()
		return nil, err
	}
	db.log.Info("database opened", logkey.DBURL, db.url, logkey.RoomsTable, db.cfg.RoomsTable, logkey.MembersTable, db.cfg.MembersTable,
		logkey.BansTable, db.cfg.BansTable, logkey.ModerationTable, db.cfg.ModerationTable, logkey.History, db.cfg.History, logkey.Events, db.cfg.Events)
	return db, nil
}

// connect parses the URL, builds the pool and checks that the database
// answers; the tables are not looked at.
func connect(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	u, err := dburl.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d := dialectFor(u.Scheme)
	log := cfg.Logger.With(logkey.System, logkey.SystemStore, logkey.Engine, d.name)
	sqldb, err := d.open(u, log)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", u, err)
	}
	db := &DB{db: sqlx.NewDb(sqldb, d.driver), d: d, cfg: cfg, log: log, url: u.String(), parallelSpan: parallelMinSpan}
	db.configurePool()
	db.q = buildQueries(d, cfg.RoomsTable, cfg.MembersTable)
	db.mq = buildModerationQueries(d, &cfg)
	if cfg.History {
		db.hq = buildHistoryQueries(d, &cfg)
	}
	if cfg.Events {
		db.eq = buildEventQueries(d, cfg.EventsTable)
	}

	pctx, cancel := context.WithTimeout(ctx, connectTimeout+cfg.ApplyTimeout)
	err = db.db.PingContext(pctx)
	cancel()
	if err != nil {
		db.db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", db.url, db.wrap(err))
	}
	return db, nil
}

func (db *DB) configurePool() {
	if db.d.name == dburl.SQLite {
		// One writer: SQLite serialises writes anyway, and one connection
		// means no SQLITE_BUSY between our own connections.
		db.db.SetMaxOpenConns(1)
		db.maxIdle = 1
	} else {
		db.db.SetMaxOpenConns(db.cfg.MaxOpenConns)
		db.maxIdle = db.cfg.MaxOpenConns
		// Recycle connections well before a server's idle timeout (MySQL's
		// wait_timeout defaults to 8h, proxies often cut after minutes).
		db.db.SetConnMaxIdleTime(time.Minute)
		db.db.SetConnMaxLifetime(30 * time.Minute)
	}
	db.db.SetMaxIdleConns(db.maxIdle)
}

// dropIdle closes the pooled idle connections, so that after an outage the
// next call dials afresh instead of finding dead sockets one by one.
func (db *DB) dropIdle() {
	db.db.SetMaxIdleConns(0)
	db.db.SetMaxIdleConns(db.maxIdle)
}

// Engine returns "mysql", "postgres" or "sqlite".
func (db *DB) Engine() string { return db.d.name }

// Ping reports whether the database answers, within ApplyTimeout. Its error
// wraps ErrUnavailable.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.ApplyTimeout)
	defer cancel()
	if err := db.db.PingContext(ctx); err != nil {
		err = db.wrap(err)
		if errors.Is(err, ErrUnavailable) {
			db.dropIdle()
		}
		return fmt.Errorf("store: ping %s: %w", db.url, err)
	}
	return nil
}

// Close closes the connections.
func (db *DB) Close() error { return db.db.Close() }

// Redacted returns the URL with the password replaced by "***", for logs.
func Redacted(url string) string { return dburl.Redacted(url) }
