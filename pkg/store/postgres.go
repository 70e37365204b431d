package store

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

func postgresDialect() *dialect {
	return (&dialect{
		name:     dburl.Postgres,
		driver:   "pgx",
		bind:     sqlx.DOLLAR,
		open:     openPostgres,
		table:    func(n string) string { return n },
		foldEq:   func(col string) string { return "lower(" + col + ") = lower(?)" },
		snapshot: &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		classify: classifyPostgres,
		// The same definitions as OpenSIPS's scripts/postgres/*-create.sql.
		// Constraint names carry the table name because PostgreSQL wants
		// them unique per schema; for the default names they are OpenSIPS's.
		createVersion: "CREATE TABLE IF NOT EXISTS version (\n" +
			"    table_name VARCHAR(32) NOT NULL,\n" +
			"    table_version INTEGER DEFAULT 0 NOT NULL,\n" +
			"    CONSTRAINT version_t_name_idx UNIQUE (table_name)\n" +
			")",
		createRooms: func(t string) []string {
			return []string{
				"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
					"    id SERIAL PRIMARY KEY NOT NULL,\n" +
					"    name VARCHAR(64) NOT NULL,\n" +
					"    domain VARCHAR(64) NOT NULL,\n" +
					"    flag INTEGER NOT NULL,\n" +
					"    CONSTRAINT " + t + "_name_domain_idx UNIQUE (name, domain)\n" +
					")",
				"ALTER SEQUENCE " + t + "_id_seq MAXVALUE 2147483647 CYCLE",
			}
		},
		createMembers: func(t string) []string {
			return []string{
				"CREATE TABLE IF NOT EXISTS " + t + " (\n" +
					"    id SERIAL PRIMARY KEY NOT NULL,\n" +
					"    username VARCHAR(64) NOT NULL,\n" +
					"    domain VARCHAR(64) NOT NULL,\n" +
					"    room VARCHAR(64) NOT NULL,\n" +
					"    flag INTEGER NOT NULL,\n" +
					"    CONSTRAINT " + t + "_account_room_idx UNIQUE (username, domain, room)\n" +
					")",
				"ALTER SEQUENCE " + t + "_id_seq MAXVALUE 2147483647 CYCLE",
				"CREATE INDEX IF NOT EXISTS " + t + "_room_idx ON " + t + " (room)",
			}
		},
		roomIndexed: "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() " +
			"AND tablename = lower(?) AND (indexdef LIKE '%(room)' OR indexdef LIKE '%(room, %')",
	}).standardSQL("BIGSERIAL", "BYTEA")
}

func openPostgres(u *dburl.URL, log *slog.Logger) (*sql.DB, error) {
	var b strings.Builder
	kv := func(k, v string) {
		// libpq keyword/value syntax: quote every value, escaping ' and \.
		v = strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)
		fmt.Fprintf(&b, "%s='%s' ", k, v)
	}
	for k, vs := range u.Params {
		if !validParamName(k) {
			return nil, fmt.Errorf("%w: parameter name %q", ErrBadURL, k)
		}
		kv(k, vs[len(vs)-1])
	}
	if u.Socket != "" {
		kv("host", u.Socket)
	} else {
		kv("host", u.Host)
	}
	if u.Port != 0 {
		kv("port", strconv.Itoa(u.Port))
	}
	if u.User != "" {
		kv("user", u.User)
	}
	if u.HasPassword {
		kv("password", u.Password)
	}
	kv("dbname", u.Database)
	if u.Params.Get("connect_timeout") == "" {
		kv("connect_timeout", strconv.Itoa(int(connectTimeout.Seconds())))
	}
	if u.Params.Get("application_name") == "" {
		kv("application_name", "imcd")
	}
	cfg, err := pgx.ParseConfig(b.String())
	if err != nil {
		// pgx's message may quote the connection string; say only which
		// part failed.
		return nil, fmt.Errorf("%w: the PostgreSQL parameters do not parse", ErrBadURL)
	}
	return stdlib.OpenDB(*cfg), nil
}

func validParamName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func classifyPostgres(err error) errKind {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
			return kindUnavailable
		}
		return classifyCommon(err)
	}
	switch {
	case pe.Code == "23505": // unique_violation
		return kindConflict
	case pe.Code == "22001": // string_data_right_truncation
		return kindTooLong
	case pe.Code == "42P01": // undefined_table
		return kindNoTable
	case pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03": // serialization, deadlock, lock not available
		return kindBusy
	case strings.HasPrefix(pe.Code, "08"), // connection exception
		strings.HasPrefix(pe.Code, "53"),  // insufficient resources (disk full, too many connections)
		strings.HasPrefix(pe.Code, "57P"), // shutdown, cannot connect now
		strings.HasPrefix(pe.Code, "28"),  // invalid authorisation
		pe.Code == "25006",                // read_only_sql_transaction (a standby)
		pe.Code == "3D000":                // invalid_catalog_name: the database is gone
		return kindUnavailable
	}
	return kindOther
}
