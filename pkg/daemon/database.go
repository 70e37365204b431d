package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
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
		d.notice("using database", "db_url", store.Redacted(url))
	}
	db, err := store.Open(ctx, store.Config{URL: url, RoomsTable: d.cfg.RoomsTable, MembersTable: d.cfg.MembersTable,
		Logger: d.logger, CreateTables: embedded || d.cfg.CreateTables})
	if err != nil {
		return err
	}
	d.store = db
	start := time.Now()
	rooms, err := db.Load(ctx)
	d.metrics.DB("load", time.Since(start))
	if err != nil {
		return fmt.Errorf("loading rooms: %w", err)
	}
	for _, r := range rooms {
		d.shardFor(r.Key()).rooms.Put(r)
	}
	d.notice("rooms loaded", "rooms", len(rooms), "took", time.Since(start).Round(time.Millisecond))
	d.logOutsidePolicy(rooms)
	return nil
}
