package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// DatabaseURL returns the db_url the daemon uses: the configured one, or the
// embedded SQLite file in data_dir.
func DatabaseURL(cfg config.Config) (url string, embedded bool, err error) {
	if cfg.DBURL != "" {
		return cfg.DBURL, false, nil
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return "", true, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", true, fmt.Errorf("data_dir: %w", err)
	}
	return "sqlite://" + filepath.Join(dir, "imcd.db"), true, nil
}

func (d *Daemon) openStore(ctx context.Context) error {
	url, embedded, err := DatabaseURL(d.cfg)
	if err != nil {
		return err
	}
	if embedded {
		d.notice("no db_url configured: using the embedded SQLite database", "path", url[len("sqlite://"):])
	} else {
		d.notice("using database", logkey.DBURL, store.Redacted(url))
	}
	db, history, err := d.openDatabase(ctx, url, embedded || d.cfg.CreateTables)
	if err != nil {
		return err
	}
	d.store = db
	d.engine = imc.NewEngine(EngineConfig(d.cfg, history))
	start := time.Now()
	rooms, err := db.Load(ctx)
	d.metrics.DB("load", time.Since(start))
	if err != nil {
		return fmt.Errorf("loading rooms: %w", err)
	}
	for _, r := range rooms {
		d.shardFor(r.Key()).rooms.Put(r)
	}
	d.notice("rooms loaded", logkey.Rooms, len(rooms), "took", time.Since(start).Round(time.Millisecond))
	d.logOutsidePolicy(rooms)
	if history {
		return d.openHistory(ctx, db)
	}
	return nil
}

// openDatabase opens the store, with the history tables as the history
// key says: with auto, on when they exist or imcd creates tables, else
// off with a notice saying how to turn it on.
func (d *Daemon) openDatabase(ctx context.Context, url string, create bool) (*store.DB, bool, error) {
	cfg := store.Config{URL: url, RoomsTable: d.cfg.RoomsTable, MembersTable: d.cfg.MembersTable,
		BansTable: d.cfg.BansTable, ModerationTable: d.cfg.ModerationTable, Logger: d.logger, CreateTables: create, History: d.cfg.History != config.HistoryOff,
		HistoryTable: d.cfg.HistoryTable, TopicsTable: d.cfg.TopicsTable, MarksTable: d.cfg.MarksTable,
		Events: d.cfg.IsRabbitMQ(), EventsTable: d.cfg.RabbitMQ.EventsTable} // RabbitMQ mode: events applied once
	db, err := store.Open(ctx, cfg)
	if err == nil || d.cfg.History != config.HistoryAuto || !errors.Is(err, store.ErrNoTables) {
		return db, err == nil && cfg.History, err
	}
	cfg.History = false
	db, err2 := store.Open(ctx, cfg)
	if err2 != nil {
		return nil, false, err2 // the imc tables themselves are missing: say that
	}
	d.notice("history off: its tables are missing (create them with sql/<engine>/imcd-history-create.sql or start once with create_tables = yes; set history = off to silence this)",
		logkey.Err, err)
	return db, false, nil
}

// openHistory starts the history: each room goes on numbering its lines
// where the table ends, rooms get their topics, and the writer starts.
func (d *Daemon) openHistory(ctx context.Context, db *store.DB) error {
	seqs, err := db.LastSeqs(ctx)
	if err != nil {
		return fmt.Errorf("loading the history: %w", err)
	}
	topics, err := db.Topics(ctx)
	if err != nil {
		return fmt.Errorf("loading the topics: %w", err)
	}
	if d.cfg.CatchUpMax > 0 {
		if d.marksAtStart, err = db.AllMarks(ctx); err != nil {
			return fmt.Errorf("loading the catch-up marks: %w", err)
		}
	}
	for key, seq := range seqs {
		d.shardFor(key).seqs[key] = seq
	}
	for key, t := range topics {
		d.shardFor(key).rooms.SetTopic(key, imc.Topic{Text: string(t.Text), SetBy: setBy(t.SetBy), At: t.Time})
	}
	d.hist = db
	d.history = newHistoryWriter(db, d.logger, d.cfg.HistoryKeepLines, d.cfg.HistoryMaxAge, seqs)
	w := d.history
	d.metrics.History(metrics.HistoryReadings{Written: w.written.Load, Dropped: w.dropped.Load, Purged: w.purged.Load,
		Queued: func() int64 { return int64(len(w.queue)) }})
	d.notice("history on", "rooms_with_history", len(seqs), "topics", len(topics), "keep_lines", d.cfg.HistoryKeepLines,
		"max_age", d.cfg.HistoryMaxAge)
	return nil
}

// setBy reads a stored set_by column; an unreadable one is left out.
func setBy(s string) imc.URI {
	u, err := imc.ParseURI(s)
	if err != nil {
		return imc.URI{}
	}
	return u
}
