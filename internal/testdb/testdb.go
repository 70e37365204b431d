// Package testdb gives tests the machine's test databases: their URLs
// (IMCD_TEST_MYSQL_URL, IMCD_TEST_POSTGRES_URL, or the defaults that
// scripts/test-services.sh sets up), whether they answer (a test skips, or
// fails under IMCD_TEST_REQUIRE_DB=1), tables of the test's own that are
// dropped when it ends, and the URL rewritten to go through a proxy. The
// servers are shared by every package's tests, so nothing here drops
// anything it did not name itself.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the "mysql" driver
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// Engines, as db_url schemes.
const (
	MySQL    = dburl.MySQL
	Postgres = dburl.Postgres
	SQLite   = dburl.SQLite
)

// Default URLs: what scripts/test-services.sh creates.
const (
	DefaultMySQLURL    = "mysql://imcd:imcd@127.0.0.1:3306/imcd_test"
	DefaultPostgresURL = "postgres://imcd:imcd@127.0.0.1:5432/imcd_test"
)

// URL returns the test database URL of a server engine.
func URL(engine string) string {
	switch engine {
	case MySQL:
		if u := os.Getenv("IMCD_TEST_MYSQL_URL"); u != "" {
			return u
		}
		return DefaultMySQLURL
	case Postgres:
		if u := os.Getenv("IMCD_TEST_POSTGRES_URL"); u != "" {
			return u
		}
		return DefaultPostgresURL
	}
	return ""
}

var (
	reachMu  sync.Mutex
	reachErr = map[string]error{} // per test binary: a server is pinged once
)

// Need returns the URL of engine's test database, and skips the test (or
// fails it under IMCD_TEST_REQUIRE_DB=1) when the server does not answer.
// SQLite needs nothing; its URL is a fresh file in the test's directory.
func Need(tb testing.TB, engine string) string {
	tb.Helper()
	if engine == SQLite {
		return "sqlite://" + tb.TempDir() + "/imc.db"
	}
	reachMu.Lock()
	err, done := reachErr[engine]
	if !done {
		err = ping(URL(engine))
		reachErr[engine] = err
	}
	reachMu.Unlock()
	if err != nil {
		if os.Getenv("IMCD_TEST_REQUIRE_DB") != "" {
			tb.Fatalf("%s not reachable at %s: %v", engine, dburl.Redacted(URL(engine)), err)
		}
		tb.Skipf("%s not reachable at %s (set IMCD_TEST_%s_URL): %v", engine, dburl.Redacted(URL(engine)), strings.ToUpper(engine), err)
	}
	return URL(engine)
}

// Tables are the names of one test's tables.
type Tables struct {
	Rooms, Members string
	// Extra holds more tables the test's imcd may create (history,
	// topics, ...); they are dropped too.
	Extra []string
}

// NewTables returns fresh table names on engine's test database and drops
// those tables, and their version rows, when the test ends.
func NewTables(tb testing.TB, engine string, extra ...string) Tables {
	tb.Helper()
	b := make([]byte, 5)
	rand.Read(b)
	s := hex.EncodeToString(b)
	t := Tables{Rooms: "imc_rooms_t" + s, Members: "imc_members_t" + s}
	for _, e := range extra {
		t.Extra = append(t.Extra, e+"_t"+s)
	}
	if engine != SQLite {
		u := URL(engine)
		tb.Cleanup(func() { drop(tb, u, t) })
	}
	return t
}

// All lists every table name.
func (t Tables) All() []string { return append([]string{t.Members, t.Rooms}, t.Extra...) }

// Open opens the database of u with database/sql.
func Open(u string) (*sql.DB, error) {
	p, err := dburl.Parse(u)
	if err != nil {
		return nil, err
	}
	switch p.Scheme {
	case MySQL:
		host := fmt.Sprintf("tcp(%s:%d)", p.Host, orPort(p.Port, 3306))
		return sql.Open("mysql", fmt.Sprintf("%s:%s@%s/%s", p.User, p.Password, host, p.Database))
	case Postgres:
		uu := url.URL{Scheme: "postgres", User: url.UserPassword(p.User, p.Password),
			Host: fmt.Sprintf("%s:%d", p.Host, orPort(p.Port, 5432)), Path: "/" + p.Database}
		return sql.Open("pgx", uu.String())
	}
	return nil, fmt.Errorf("testdb: no server engine in %s", dburl.Redacted(u))
}

// HostPort returns the host:port of a server URL.
func HostPort(u string) string {
	p, err := dburl.Parse(u)
	if err != nil {
		return ""
	}
	port := orPort(p.Port, map[string]int{MySQL: 3306, Postgres: 5432}[p.Scheme])
	return fmt.Sprintf("%s:%d", p.Host, port)
}

// Through returns u with its host:port replaced by hostport (a proxy's).
func Through(u, hostport string) string {
	p, err := dburl.Parse(u)
	if err != nil {
		return u
	}
	out := p.Scheme + "://" + url.PathEscape(p.User) + ":" + url.PathEscape(p.Password) + "@" + hostport + "/" + p.Database
	if len(p.Params) > 0 {
		out += "?" + p.Params.Encode()
	}
	return out
}

func orPort(p, def int) int {
	if p == 0 {
		return def
	}
	return p
}

func ping(u string) error {
	db, err := Open(u)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// drop removes t's tables and their version rows.
func drop(tb testing.TB, u string, t Tables) {
	db, err := Open(u)
	if err != nil {
		tb.Logf("testdb: drop: %v", err)
		return
	}
	defer db.Close()
	q := func(name string) string {
		if strings.HasPrefix(u, MySQL) {
			return "`" + name + "`"
		}
		return `"` + name + `"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var names []string
	for _, n := range t.All() {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+q(n)); err != nil {
			tb.Logf("testdb: drop %s: %v", n, err)
		}
		names = append(names, "'"+n+"'")
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM "+q("version")+" WHERE table_name IN ("+strings.Join(names, ",")+")"); err != nil {
		tb.Logf("testdb: version rows: %v", err)
	}
}
