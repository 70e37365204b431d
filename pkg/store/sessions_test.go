package store

import (
	"context"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// sessionWatch counts the sessions on a test's own database other than its
// own, to tell when every connection of a killed process has ended on the
// server side.
type sessionWatch struct {
	db    *DB
	count string
}

func newSessionWatch(t *testing.T, cfg Config) *sessionWatch {
	t.Helper()
	w := &sessionWatch{}
	switch dialectFor(mustScheme(t, cfg.URL)).name {
	case dburl.MySQL:
		w.count = "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
	case dburl.Postgres:
		w.count = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() " +
			"AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
	default:
		return w // SQLite: a killed process leaves nothing running
	}
	db, err := connect(context.Background(), Config{URL: cfg.URL})
	if err != nil {
		t.Fatal(err)
	}
	// One connection, so that "other than mine" is every other session.
	db.db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	w.db = db
	return w
}

func mustScheme(t *testing.T, url string) string {
	t.Helper()
	u, err := dburl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme
}

// waitGone returns once no other session is left on the database, and
// reports whether one was there at the first look. It fails the test after
// a generous deadline.
func (w *sessionWatch) waitGone(t *testing.T, run int) (lingered bool) {
	t.Helper()
	if w.db == nil {
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for first := true; ; first = false {
		var n int
		if err := w.db.db.Get(&n, w.count); err != nil {
			t.Fatalf("run %d: count sessions: %v", run, err)
		}
		if n == 0 {
			return lingered
		}
		lingered = lingered || first
		if time.Now().After(deadline) {
			t.Fatalf("run %d: %d sessions still open on the test database 30s after the kill", run, n)
		}
		time.Sleep(2 * time.Millisecond) // polling the server's session list
	}
}
