package store

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// Defaults for Config, and for the arguments of the purge methods. Each
// default has this one source; the daemon's configuration refers to it.
const (
	DefaultRoomsTable   = "imc_rooms"
	DefaultMembersTable = "imc_members"
	DefaultHistoryTable = "imc_history"
	DefaultTopicsTable  = "imc_topics"
	DefaultMarksTable   = "imc_history_marks"
	DefaultEventsTable  = "imc_events"
	DefaultBansTable    = "imc_bans"
	DefaultModTable     = "imc_moderation"
	DefaultApplyTimeout = 2 * time.Second
	DefaultMaxOpenConns = 8

	// DefaultHistoryKeepLines is how many lines a room keeps; older ones
	// are purged (0: no limit by count).
	DefaultHistoryKeepLines = 1000
	// DefaultHistoryMaxAge is how long a line is kept (0: no limit by age).
	DefaultHistoryMaxAge = 30 * 24 * time.Hour
	// DefaultEventsWindow is how long an applied event's key is kept: a
	// redelivery later than this is applied again. It must exceed the
	// longest time a message can stay unacknowledged in the broker (all
	// imcd stopped), and costs one row per event of the window.
	DefaultEventsWindow = 24 * time.Hour
	// DefaultPurgeBatch is how many rows one purge statement deletes, so
	// that no statement holds locks for long.
	DefaultPurgeBatch = 500
)

// Config configures Open.
type Config struct {
	// URL is the db_url, in OpenSIPS's grammar (see package dburl). Empty is
	// an error here: the daemon supplies its default SQLite path.
	URL string
	// RoomsTable is rooms_table; default "imc_rooms".
	RoomsTable string
	// MembersTable is members_table; default "imc_members".
	MembersTable string
	// Logger receives the store's logs, under system=store; nil discards.
	Logger *slog.Logger
	// ApplyTimeout bounds one Apply (and Ping, LoadRooms, AppendHistory,
	// ApplyOnce, MarkEvents, each purge statement), so that a dead database
	// fails a call quickly instead of hanging it; default 2s.
	ApplyTimeout time.Duration
	// CreateTables makes Open create missing tables and version rows
	// (CreateTables) instead of failing with ErrNoTables. Set it when the
	// operator asked for it, and for the embedded SQLite default; never
	// silently for a production database.
	CreateTables bool
	// MaxOpenConns caps the pool for MySQL and PostgreSQL; default 8.
	// SQLite always uses one connection (one writer).
	MaxOpenConns int

	// BansTable is bans_table; default "imc_bans". ModerationTable is
	// moderation_table; default "imc_moderation". imcd's own tables of
	// bans, moderated rooms and voices (moderation.go), always used.
	BansTable       string
	ModerationTable string

	// History turns on the history, topics and history-marks tables: Open
	// checks them (CreateTables creates them), the history methods work,
	// and destroying a room or removing a member deletes their rows in the
	// same transaction. Off, the store never touches those tables.
	History bool
	// HistoryTable is history_table; default "imc_history".
	HistoryTable string
	// TopicsTable is topics_table; default "imc_topics".
	TopicsTable string
	// MarksTable is history_marks_table; default "imc_history_marks".
	MarksTable string

	// Events turns on the applied-once events table (ApplyOnce,
	// MarkEvents), for several imcd consuming the same broker queues.
	Events bool
	// EventsTable is events_table; default "imc_events".
	EventsTable string
}

func (cfg *Config) setDefaults() error {
	if cfg.URL == "" {
		return fmt.Errorf("store: %w", &dburl.Error{Reason: "empty"})
	}
	for _, d := range []struct {
		v   *string
		def string
	}{
		{&cfg.RoomsTable, DefaultRoomsTable},
		{&cfg.MembersTable, DefaultMembersTable},
		{&cfg.HistoryTable, DefaultHistoryTable},
		{&cfg.TopicsTable, DefaultTopicsTable},
		{&cfg.MarksTable, DefaultMarksTable},
		{&cfg.EventsTable, DefaultEventsTable},
		{&cfg.BansTable, DefaultBansTable},
		{&cfg.ModerationTable, DefaultModTable},
	} {
		if *d.v == "" {
			*d.v = d.def
		}
	}
	type named struct{ key, name string }
	names := []named{{"rooms_table", cfg.RoomsTable}, {"members_table", cfg.MembersTable},
		{"bans_table", cfg.BansTable}, {"moderation_table", cfg.ModerationTable}}
	if cfg.History {
		names = append(names, named{"history_table", cfg.HistoryTable}, named{"topics_table", cfg.TopicsTable},
			named{"history_marks_table", cfg.MarksTable})
	}
	if cfg.Events {
		names = append(names, named{"events_table", cfg.EventsTable})
	}
	seen := map[string]string{}
	for _, t := range names {
		if !validTableName(t.name) {
			return fmt.Errorf("store: %w: %s %q: use 1 to 32 letters, digits and '_', not starting with a digit", ErrBadConfig, t.key, t.name)
		}
		// Names that differ only in letter case are one table on
		// PostgreSQL (unquoted names fold) and on SQLite.
		key := strings.ToLower(t.name)
		if other, dup := seen[key]; dup {
			return fmt.Errorf("store: %w: %s and %s are both %q", ErrBadConfig, other, t.key, t.name)
		}
		seen[key] = t.key
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = DefaultApplyTimeout
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = DefaultMaxOpenConns
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// validTableName admits plain identifiers only, since table names are
// pasted into SQL text. 32 is the width of version.table_name.
func validTableName(s string) bool {
	if s == "" || len(s) > 32 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
