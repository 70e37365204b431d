package preflight

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/store"
)

// TestDatabaseServers: on MariaDB and PostgreSQL, tables of the test's own
// are reported usable once they exist, and missing ones are a problem
// unless create_tables would make them; the tables are never created by
// the check.
func TestDatabaseServers(t *testing.T) {
	for _, engine := range []string{testdb.MySQL, testdb.Postgres} {
		t.Run(engine, func(t *testing.T) {
			url := testdb.Need(t, engine)
			tables := testdb.NewTables(t, engine)
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.MIFIFO = ""
			cfg.DBURL, cfg.RoomsTable, cfg.MembersTable = url, tables.Rooms, tables.Members
			cfg.History = config.HistoryOff

			out, err := check(t, cfg)
			if !errors.Is(err, ErrProblems) || !strings.Contains(out, `table "`+tables.Rooms+`" does not exist`) {
				t.Errorf("missing tables: %v\n%s", err, out)
			}
			cfg.CreateTables = true
			if out, err := check(t, cfg); err != nil || !strings.Contains(out, "missing tables are created at start") {
				t.Errorf("missing tables with create_tables: %v\n%s", err, out)
			}
			cfg.CreateTables = false
			if out, err := check(t, cfg); err == nil {
				t.Errorf("-check created the tables:\n%s", out)
			}

			db, err := store.Open(context.Background(), store.Config{URL: url, RoomsTable: tables.Rooms, MembersTable: tables.Members, CreateTables: true})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			out, err = check(t, cfg)
			if err != nil || !strings.Contains(out, "tables "+tables.Rooms+", "+tables.Members+" usable") ||
				!strings.Contains(out, "history        off (history = off)") || strings.Contains(out, ":imcd@") {
				t.Errorf("existing tables: %v\n%s", err, out)
			}
		})
	}
}

func check(t *testing.T, cfg config.Config) (string, error) {
	var out bytes.Buffer
	err := Run(context.Background(), cfg, "", &out, slog.New(slog.DiscardHandler))
	return out.String(), err
}
