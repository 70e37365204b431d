package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/imcd-sip/imcd/pkg/store"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// defaultMySQLURL is the test database of scripts/test.sh; the user may
// also create databases named imcd_t_*.
const defaultMySQLURL = "mysql://imcd:imcd@127.0.0.1:3306/imcd_test"

// benchDB is one set of imc tables made for a scenario: an SQLite file in
// the scenario's directory, or a pair of tables with a unique suffix in the
// MariaDB/MySQL test database, dropped afterwards.
type benchDB struct {
	engine  string // "sqlite" or "mysql"
	url     string // db_url for imcd
	rooms   string // rooms_table
	members string // members_table
	db      *sql.DB
}

// openBenchDB creates the tables (through pkg/store, so they are exactly
// imcd's) and opens a connection for filling them.
func openBenchDB(ctx context.Context, engine, dir, mysqlURL string) (*benchDB, error) {
	b := &benchDB{engine: engine}
	var dsn, driver string
	switch engine {
	case "sqlite":
		path := filepath.Join(dir, "imcd.db")
		b.url = "sqlite://" + path
		b.rooms, b.members = store.DefaultRoomsTable, store.DefaultMembersTable
		driver, dsn = "sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)"
	case "mysql":
		u, err := dburl.Parse(mysqlURL)
		if err != nil {
			return nil, err
		}
		b.url = mysqlURL
		var rnd [4]byte
		_, _ = rand.Read(rnd[:])
		suffix := "_ib" + hex.EncodeToString(rnd[:])
		b.rooms, b.members = "imc_rooms"+suffix, "imc_members"+suffix
		driver, dsn = "mysql", mysqlDSN(u, u.Database)
	default:
		return nil, fmt.Errorf("unknown database engine %q", engine)
	}
	st, err := store.Open(ctx, store.Config{URL: b.url, RoomsTable: b.rooms, MembersTable: b.members,
		CreateTables: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	st.Close()
	b.db, err = sql.Open(driver, dsn)
	if err != nil {
		b.drop(ctx)
		return nil, err
	}
	// One connection, so that the session settings below hold for the fill.
	b.db.SetMaxOpenConns(1)
	if engine == "mysql" {
		// The rows are unique by construction: let InnoDB buffer the
		// secondary-index checks instead of reading for each row.
		if _, err := b.db.ExecContext(ctx, "SET SESSION unique_checks = 0"); err != nil {
			b.drop(ctx)
			return nil, err
		}
	}
	return b, nil
}

// mysqlDSN is the driver's DSN for db_url u on database db.
func mysqlDSN(u *dburl.URL, db string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = u.User, u.Password, db
	port := u.Port
	if port == 0 {
		port = 3306
	}
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Host, strconv.Itoa(port))
	if u.Socket != "" {
		cfg.Net, cfg.Addr = "unix", u.Socket
	}
	cfg.InterpolateParams = true
	return cfg.FormatDSN()
}

// roomSet is nRooms rooms of size members each: rooms named prefix0,
// prefix1, …; member 0 is the owner. user names member j of room i.
type roomSet struct {
	prefix string
	nRooms int
	size   int
	user   func(room, j int) string
}

func (r roomSet) room(i int) string { return r.prefix + strconv.Itoa(i) }

// distinctUsers names member j of room i "<prefix>u<i>-<j>": nobody is in
// two rooms.
func distinctUsers(prefix string) func(room, j int) string {
	return func(room, j int) string { return prefix + "u" + strconv.Itoa(room) + "-" + strconv.Itoa(j) }
}

// sharedUsers draws members from a pool of a third as many users as
// places, so that each user is in about three rooms (as on a real server).
func sharedUsers(rooms, size int) func(room, j int) string {
	pool := max(rooms*size/3, size)
	return func(room, j int) string { return "s" + strconv.Itoa((room*size+j)%pool) }
}

// fill writes the rooms and members with multi-row INSERTs (1,000 rows a
// statement), committing every 50 statements.
func (b *benchDB) fill(ctx context.Context, sets ...roomSet) error {
	const rowsPerStmt = 1000
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	stmts := 0
	var sb strings.Builder
	args := make([]any, 0, rowsPerStmt*4)
	rows := 0
	exec := func(table, cols, tuple string) error {
		if rows == 0 {
			return nil
		}
		sb.Reset()
		sb.WriteString("INSERT INTO " + table + " (" + cols + ") VALUES ")
		for i := range rows {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(tuple)
		}
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("filling %s: %w", table, err)
		}
		rows, args = 0, args[:0]
		if stmts++; stmts%50 == 0 {
			if err := tx.Commit(); err != nil {
				return err
			}
			if tx, err = b.db.BeginTx(ctx, nil); err != nil {
				return err
			}
		}
		return nil
	}
	const roomCols, roomTuple = "name, domain, flag", "(?,?,?)"
	const memberCols, memberTuple = "username, domain, room, flag", "(?,?,?,?)"
	for _, set := range sets {
		for i := range set.nRooms {
			args = append(args, set.room(i), benchDomain, 0)
			if rows++; rows == rowsPerStmt {
				if err := exec(b.rooms, roomCols, roomTuple); err != nil {
					tx.Rollback()
					return err
				}
			}
		}
	}
	if err := exec(b.rooms, roomCols, roomTuple); err != nil {
		tx.Rollback()
		return err
	}
	for _, set := range sets {
		for i := range set.nRooms {
			uri := "sip:" + set.room(i) + "@" + benchDomain
			for j := range set.size {
				flag := 0
				if j == 0 {
					flag = 1
				}
				args = append(args, set.user(i, j), benchDomain, uri, flag)
				if rows++; rows == rowsPerStmt {
					if err := exec(b.members, memberCols, memberTuple); err != nil {
						tx.Rollback()
						return err
					}
				}
			}
		}
	}
	if err := exec(b.members, memberCols, memberTuple); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// drop removes the MySQL tables and their version rows (the SQLite file
// goes with the scenario's directory).
func (b *benchDB) drop(ctx context.Context) {
	if b.engine == "mysql" && b.db != nil {
		_, _ = b.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+b.rooms+", "+b.members)
		_, _ = b.db.ExecContext(ctx, "DELETE FROM version WHERE table_name IN (?, ?)", b.rooms, b.members)
	}
	if b.db != nil {
		b.db.Close()
	}
}
