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

// TestDeliveryAndCanary: the check says which way MESSAGEs leave (the
// order a member may get them in depends on it) and whether the canary
// watches the event path.
func TestDeliveryAndCanary(t *testing.T) {
	for _, c := range []struct {
		set  func(*config.Config)
		want []string
	}{
		{func(*config.Config) {}, []string{"to the member's address of record", "canary         a probe every 10s"}},
		{func(c *config.Config) { c.OutboundProxy = "sip:127.0.0.1:5070"; c.ProxyInOrder = true },
			[]string{"next_hop sip:127.0.0.1:5070, several in flight a member (proxy_in_order)"}},
		{func(c *config.Config) { c.OutboundProxy = "sip:127.0.0.1:5060" }, []string{"one of a room's lines in flight a member"}},
		{func(c *config.Config) { c.DeliveryPath = config.PathContact }, []string{"registered contact"}},
		{func(c *config.Config) { c.Canary.Interval = 0 }, []string{"canary         off (canary_interval = 0)"}},
	} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MIFIFO = ""
		c.set(&cfg)
		out, err := check(t, cfg)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("no %q in:\n%s", w, out)
			}
		}
	}
}
