package store

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// mysqlIOTimeout bounds each network read and write of a MySQL connection:
// a server that stops answering mid-query fails the call instead of hanging
// it (Apply's own deadline is shorter and applies first).
const mysqlIOTimeout = 10 * time.Second

func mysqlDialect() *dialect {
	return &dialect{
		name:   dburl.MySQL,
		driver: "mysql",
		bind:   sqlx.QUESTION,
		open:   openMySQL,
		table:  func(n string) string { return "`" + n + "`" },
		// READ COMMITTED: the DELETE of a room's members scans the members
		// table when it has no index on room (OpenSIPS's schema has none);
		// under REPEATABLE READ that would lock every row scanned and block
		// other rooms' commands.
		txOptions: &sql.TxOptions{Isolation: sql.LevelReadCommitted},
		snapshot:  &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		classify:  classifyMySQL,
		// The same definitions as OpenSIPS's scripts/mysql/*-create.sql, on
		// InnoDB (transactions) as OpenSIPS's current scripts.
		createVersion: "CREATE TABLE IF NOT EXISTS `version` (\n" +
			"    table_name CHAR(32) NOT NULL,\n" +
			"    table_version INT UNSIGNED DEFAULT 0 NOT NULL,\n" +
			"    CONSTRAINT t_name_idx UNIQUE (table_name)\n" +
			") ENGINE=InnoDB",
		createRooms: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
				"    name CHAR(64) NOT NULL,\n" +
				"    domain CHAR(64) NOT NULL,\n" +
				"    flag INT(11) NOT NULL,\n" +
				"    CONSTRAINT name_domain_idx UNIQUE (name, domain)\n" +
				") ENGINE=InnoDB"}
		},
		createMembers: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
				"    username CHAR(64) NOT NULL,\n" +
				"    domain CHAR(64) NOT NULL,\n" +
				"    room CHAR(64) NOT NULL,\n" +
				"    flag INT(11) NOT NULL,\n" +
				"    CONSTRAINT account_room_idx UNIQUE (username, domain, room),\n" +
				"    INDEX room_idx (room)\n" +
				") ENGINE=InnoDB"}
		},
		// imcd's own tables (sql/mysql/imcd-*-create.sql).
		createHistory: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
				"    room VARCHAR(64) NOT NULL,\n" +
				"    seq BIGINT NOT NULL,\n" +
				"    kind SMALLINT DEFAULT 0 NOT NULL,\n" +
				"    sender VARCHAR(255) NOT NULL,\n" +
				"    time_ms BIGINT NOT NULL,\n" +
				"    content_type VARCHAR(255) NOT NULL,\n" +
				"    body MEDIUMBLOB NOT NULL,\n" +
				"    CONSTRAINT room_seq_idx UNIQUE (room, seq),\n" +
				"    INDEX time_idx (time_ms)\n" +
				") ENGINE=InnoDB"}
		},
		createTopics: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    room VARCHAR(64) PRIMARY KEY NOT NULL,\n" +
				"    topic MEDIUMBLOB NOT NULL,\n" +
				"    set_by VARCHAR(255) NOT NULL,\n" +
				"    time_ms BIGINT NOT NULL\n" +
				") ENGINE=InnoDB"}
		},
		createMarks: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    room VARCHAR(64) NOT NULL,\n" +
				"    username VARCHAR(64) NOT NULL,\n" +
				"    domain VARCHAR(64) NOT NULL,\n" +
				"    seq BIGINT NOT NULL,\n" +
				"    PRIMARY KEY (room, username, domain)\n" +
				") ENGINE=InnoDB"}
		},
		createEvents: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    event_key CHAR(32) PRIMARY KEY NOT NULL,\n" +
				"    claim BIGINT NOT NULL,\n" +
				"    time_ms BIGINT NOT NULL,\n" +
				"    INDEX time_idx (time_ms)\n" +
				") ENGINE=InnoDB"}
		},
		createBans: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    room VARCHAR(64) NOT NULL,\n" +
				"    username VARCHAR(64) NOT NULL,\n" +
				"    domain VARCHAR(64) NOT NULL,\n" +
				"    reason BLOB NOT NULL,\n" +
				"    banned_by VARCHAR(255) NOT NULL,\n" +
				"    time_ms BIGINT NOT NULL,\n" +
				"    PRIMARY KEY (room, username, domain)\n" +
				") ENGINE=InnoDB"}
		},
		createMod: func(t string) []string {
			return []string{"CREATE TABLE IF NOT EXISTS `" + t + "` (\n" +
				"    room VARCHAR(64) NOT NULL,\n" +
				"    username VARCHAR(64) NOT NULL,\n" +
				"    domain VARCHAR(64) NOT NULL,\n" +
				"    PRIMARY KEY (room, username, domain)\n" +
				") ENGINE=InnoDB"}
		},
		// IGNORE would also turn a too-long value or a bad character into
		// a warning and store something else; the store checks every value
		// before, so here it only skips taken keys.
		insertIgnore: "INSERT IGNORE INTO ",
		ignoreSuffix: func(string) string { return "" },
		upsertSuffix: func(_ string, set ...string) string {
			s := " ON DUPLICATE KEY UPDATE "
			for i, c := range set {
				if i > 0 {
					s += ", "
				}
				s += c + " = VALUES(" + c + ")"
			}
			return s
		},
		deleteSome: func(table, _, where, order string) string {
			return "DELETE FROM " + table + " WHERE " + where + " ORDER BY " + order + " LIMIT ?"
		},
		insertVersion: "INSERT INTO `version` (table_name, table_version) SELECT ?, ? FROM DUAL " +
			"WHERE NOT EXISTS (SELECT 1 FROM `version` WHERE table_name = ?)",
		roomIndexed: "SELECT COUNT(*) FROM information_schema.statistics " +
			"WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'room' AND seq_in_index = 1",
	}
}

func openMySQL(u *dburl.URL, log *slog.Logger) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = u.User, u.Password, u.Database
	if u.Socket != "" {
		cfg.Net, cfg.Addr = "unix", u.Socket
	} else {
		port := u.Port
		if port == 0 {
			port = 3306
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Host, strconv.Itoa(port))
	}
	if len(u.Params) > 0 {
		// Let the driver read the operator's parameters (tls=…, …) through
		// its own DSN parser; imcd's settings below override them.
		sep := "?"
		dsn := cfg.FormatDSN()
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + u.Params.Encode()
		parsed, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("%w: parameters: %v", ErrBadURL, err)
		}
		cfg = parsed
	}
	cfg.Timeout = connectTimeout
	cfg.ReadTimeout = mysqlIOTimeout
	cfg.WriteTimeout = mysqlIOTimeout
	// One round trip per statement instead of prepare/execute/close.
	cfg.InterpolateParams = true
	// UPDATE reports matched rows, so that setting a flag to its current
	// value is not mistaken for a missing row.
	cfg.ClientFoundRows = true
	cfg.Collation = "utf8mb4_general_ci"
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	// Strict mode makes an over-long value an error instead of a silent
	// truncation (Apply refuses them first; this is the second line).
	cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	cfg.Logger = mysqlLogger{log}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	return sql.OpenDB(conn), nil
}

// mysqlLogger sends the driver's own messages ("unexpected EOF", "closing
// bad idle connection") to the store's log at debug level instead of stderr.
type mysqlLogger struct{ log *slog.Logger }

func (l mysqlLogger) Print(v ...any) { l.log.Debug("mysql driver: " + fmt.Sprint(v...)) }

// MySQL and MariaDB server error numbers the store tells apart.
const (
	myDupEntry        = 1062
	myDupEntryKey     = 1586
	myDataTooLong     = 1406
	myNoSuchTable     = 1146
	myTooManyConns    = 1040
	myServerShutdown  = 1053
	myLockWaitTimeout = 1205
	myDeadlock        = 1213
	myReadOnly        = 1290 // --read-only
	myReadOnlyTx      = 1792
	myConnKilled      = 1927 // MariaDB
	myAccessDenied    = 1045
	myDBAccessDenied  = 1044
	myBadDB           = 1049
	myClientIdle      = 4031 // MySQL 8: disconnected for inactivity
)

func classifyMySQL(err error) errKind {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		switch {
		case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, mysql.ErrPktSync), errors.Is(err, mysql.ErrPktSyncMul),
			errors.Is(err, mysql.ErrMalformPkt), errors.Is(err, mysql.ErrBusyBuffer):
			// The connection is in a state it cannot be used in.
			return kindUnavailable
		}
		return classifyCommon(err)
	}
	switch me.Number {
	case myDupEntry, myDupEntryKey:
		return kindConflict
	case myDataTooLong:
		return kindTooLong
	case myNoSuchTable:
		return kindNoTable
	case myDeadlock, myLockWaitTimeout:
		return kindBusy
	case myTooManyConns, myServerShutdown, myReadOnly, myReadOnlyTx, myConnKilled,
		myAccessDenied, myDBAccessDenied, myBadDB, myClientIdle:
		return kindUnavailable
	}
	return kindOther
}
