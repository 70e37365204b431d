package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/history"
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

// openStore opens the database, reads every room (and, with history, each
// room's last line number, the topics and the catch-up marks, and opens
// the history writer), and builds the rooms' runtime with them (rooms.go).
func (d *Daemon) openStore(ctx context.Context) error {
	url, embedded, err := DatabaseURL(d.cfg)
	if err != nil {
		return err
	}
	if embedded {
		d.notice("no db_url configured: using the embedded SQLite database", logkey.Path, url[len("sqlite://"):])
	} else {
		d.notice("using database", logkey.DBURL, store.Redacted(url))
	}
	db, withHistory, err := d.openDatabase(ctx, url, embedded || d.cfg.CreateTables)
	if err != nil {
		return err
	}
	d.store = db
	d.engine = imc.NewEngine(EngineConfig(d.cfg, withHistory))
	start := time.Now()
	loaded, err := db.Load(ctx)
	d.metrics.DB("load", time.Since(start))
	if err != nil {
		return fmt.Errorf("loading rooms: %w", err)
	}
	d.notice("rooms loaded", logkey.Rooms, len(loaded), logkey.Took, time.Since(start).Round(time.Millisecond))
	d.logOutsidePolicy(loaded)
	var seqs map[string]int64
	var topics map[string]store.Topic
	if withHistory {
		if seqs, topics, err = d.openHistory(ctx, db); err != nil {
			return err
		}
	}
	if err := d.newRooms(); err != nil {
		return err
	}
	d.rooms.Load(loaded)
	d.rooms.LoadHistory(seqs, topics)
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

// openHistory reads where each room's history ends (its rooms go on
// numbering their lines from there) and the topics, keeps the catch-up
// marks for the scheduler (restoreMarks), and opens the history writer.
func (d *Daemon) openHistory(ctx context.Context, db *store.DB) (map[string]int64, map[string]store.Topic, error) {
	seqs, err := db.LastSeqs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the history: %w", err)
	}
	topics, err := db.Topics(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the topics: %w", err)
	}
	if d.cfg.CatchUpMax > 0 {
		if d.marksAtStart, err = db.AllMarks(ctx); err != nil {
			return nil, nil, fmt.Errorf("loading the catch-up marks: %w", err)
		}
	}
	w := history.New(db, d.logger, history.Config{KeepLines: d.cfg.HistoryKeepLines, MaxAge: d.cfg.HistoryMaxAge}, seqs)
	if err := w.Open(ctx); err != nil {
		return nil, nil, err
	}
	d.hist, d.history = db, w
	d.metrics.History(metrics.HistoryReadings{Written: w.Written, Dropped: w.Dropped, Purged: w.Purged, Queued: w.Queued})
	d.notice("history on", logkey.RoomsWithHistory, len(seqs), logkey.Topics, len(topics), logkey.KeepLines, d.cfg.HistoryKeepLines,
		logkey.MaxAge, d.cfg.HistoryMaxAge)
	return seqs, topics, nil
}

// maxPolicyExamples bounds the rooms named in the log line about rooms
// outside the policy.
const maxPolicyExamples = 10

// logOutsidePolicy says once, at start, which stored rooms break the room
// policy (room_prefix, domains): they were created before it or by another
// tool, and are served as before.
func (d *Daemon) logOutsidePolicy(loaded []*imc.Room) {
	n := 0
	var examples []string
	for _, r := range loaded {
		why := d.engine.OutsidePolicy(r.URI)
		if why == "" {
			continue
		}
		n++
		if len(examples) < maxPolicyExamples {
			examples = append(examples, r.URI.String()+" ("+why+")")
		}
	}
	if n == 0 {
		return
	}
	d.logger.Warn("rooms outside the room policy (room_prefix, domains) were loaded: they are served as before, but no such room can be created",
		logkey.Rooms, n, logkey.Room, strings.Join(examples, "; "))
}
