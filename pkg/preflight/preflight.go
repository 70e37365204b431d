// Package preflight is `imcd -check`: it tells an operator, before a start
// or a restart, whether a configuration would work and what it would use,
// the way `opensips -c` does for OpenSIPS's script.
//
// It owns nothing at run time. It reads what the daemon would read (the
// database's tables, through pkg/store, without creating any; the paths the
// FIFO and unix sockets need) and starts, binds and creates nothing: it can
// run beside the imcd it checks. The configuration itself was already
// parsed and validated by pkg/config.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/sockets"
	"github.com/imcd-sip/imcd/pkg/store"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// ErrProblems is wrapped by the error Run returns when anything would keep
// imcd from starting, or from working as configured.
var ErrProblems = errors.New("the configuration would not work")

// DatabaseTimeout bounds connecting to the database and reading its tables.
const DatabaseTimeout = 10 * time.Second

// Run checks cfg (read from path, "" when from flags only) and writes to
// out what imcd would use, then every key's value. Problems are written
// to out too; the error wraps ErrProblems and lists them. logger gets what
// pkg/store reports while the tables are read (warnings such as a missing
// room index).
func Run(ctx context.Context, cfg config.Config, path string, out io.Writer, logger *slog.Logger) error {
	c := &checker{cfg: cfg, out: out, logger: logger}
	if path == "" {
		path = "(no file: defaults and flags)"
	}
	c.line("configuration", "%s", path)
	c.database(ctx)
	c.sources()
	c.mi()
	c.operations()
	if len(c.problems) > 0 {
		fmt.Fprintf(out, "\n%d problem(s):\n", len(c.problems))
		for _, p := range c.problems {
			fmt.Fprintf(out, "  - %s\n", p)
		}
	}
	fmt.Fprintf(out, "\n# every key as it would be used (defaults, then the file, then the flags)\n")
	for _, k := range config.Keys() {
		fmt.Fprintf(out, "%s = %s\n", k.Name, redactKey(k.Name, k.Get(&cfg)))
	}
	if len(c.problems) > 0 {
		return fmt.Errorf("%w: %s", ErrProblems, strings.Join(c.problems, "; "))
	}
	return nil
}

// checker collects what one Run found.
type checker struct {
	cfg      config.Config
	out      io.Writer
	logger   *slog.Logger
	problems []string
}

func (c *checker) line(what, format string, args ...any) {
	fmt.Fprintf(c.out, "%-14s %s\n", what, fmt.Sprintf(format, args...))
}

func (c *checker) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// redactKey hides the passwords in the keys that hold URLs.
func redactKey(name, value string) string {
	switch {
	case value == "":
		return value
	case name == "db_url":
		return store.Redacted(value)
	case name == "rabbitmq_url":
		if u, err := url.Parse(value); err == nil {
			return u.Redacted()
		}
	}
	return value
}

// sources reports where events come from and where deliveries go.
func (c *checker) sources() {
	cfg := &c.cfg
	if cfg.IsRabbitMQ() {
		all, active, standby := cfg.RabbitMQQueues()
		c.line("events", "RabbitMQ %s, queues %s (active %s, standby %s)", redactKey("rabbitmq_url", cfg.RabbitMQ.URL),
			strings.Join(all, ","), strings.Join(active, ","), strings.Join(standby, ","))
	} else {
		a := cfg.EventAddress()
		kind := "event_datagram"
		if a.Network == sockets.TCP {
			kind = "event_stream"
		}
		c.line("events", "%s on %s, accepted from %s", kind, a, keyValue(cfg, "event_sources"))
		c.socketDir("event_listen", a)
		if cfg.Subscribe {
			c.line("subscription", "event_subscribe %s at %s", cfg.EventName, cfg.OpenSIPSMI)
		} else {
			c.line("subscription", "none: the OpenSIPS script subscribes (event_subscribe = no)")
		}
	}
	via := "the member's address of record"
	switch {
	case cfg.DeliveryPath == config.PathContact:
		via = "the member's registered contact (else the address of record)"
	case cfg.OutboundProxy != "" && cfg.ProxyInOrder:
		via = "next_hop " + cfg.OutboundProxy + ", several in flight a member (proxy_in_order)"
	case cfg.OutboundProxy != "":
		via = "next_hop " + cfg.OutboundProxy + ", one of a room's lines in flight a member"
	}
	c.line("delivery", "t_uac_dlg to %s, to %s", strings.Join(cfg.OpenSIPSMIs(), ", "), via)
	if cfg.Canary.Interval > 0 {
		c.line("canary", "a probe every %s through each OpenSIPS, back within %s", cfg.Canary.Interval, cfg.Canary.Timeout)
	} else {
		c.line("canary", "off (canary_interval = 0): a broken event path is not noticed")
	}
}

// mi reports imcd's own MI transports and checks what the FIFO needs.
func (c *checker) mi() {
	cfg := &c.cfg
	var parts []string
	if a := cfg.MIDatagramAddress(); !a.IsZero() {
		parts = append(parts, "datagram "+a.String())
		c.socketDir("mi_datagram", a)
	}
	if cfg.MIHTTP != "" {
		parts = append(parts, "http http://"+cfg.MIHTTP+cfg.MIHTTPPath)
	}
	if p := cfg.MIFIFOPath(); p != "" {
		replies := cfg.MIFIFOReplyDir
		if replies == "" {
			replies = filepath.Dir(p)
		}
		parts = append(parts, fmt.Sprintf("fifo %s (mode %04o, replies in %s)", p, uint32(cfg.MIFIFOMode.Perm()), replies))
		c.fifo(p, replies)
	}
	if len(parts) == 0 {
		parts = append(parts, "off")
	}
	c.line("MI", "%s; passthrough %s", strings.Join(parts, "; "), cfg.MIPassthrough)
}

// fifo checks what Listen would need: the FIFO's directory (imcd does not
// create it), nothing but a FIFO at the path, the reply directory and
// mi_fifo_group.
func (c *checker) fifo(path, replies string) {
	c.dirExists("mi_fifo", filepath.Dir(path))
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeNamedPipe == 0 {
		c.problem("mi_fifo: %s exists and is not a FIFO: imcd would refuse to start", path)
	}
	if replies != filepath.Dir(path) {
		c.dirExists("mi_fifo_reply_dir", replies)
	}
	if g := c.cfg.MIFIFOGroup; g != "" {
		if _, err := user.LookupGroup(g); err != nil {
			if _, err := user.LookupGroupId(g); err != nil {
				c.problem("mi_fifo_group: no group %q", g)
			}
		}
	}
}

// socketDir checks the directory of a unix socket address.
func (c *checker) socketDir(key string, a sockets.Address) {
	if a.Network == sockets.Unixgram {
		c.dirExists(key, filepath.Dir(a.Addr))
	}
}

func (c *checker) dirExists(key, dir string) {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		c.problem("%s: directory %s: %v", key, dir, err)
	case !fi.IsDir():
		c.problem("%s: %s is not a directory", key, dir)
	}
}

// operations reports metrics and logging.
func (c *checker) operations() {
	cfg := &c.cfg
	if cfg.MetricsListen == "" {
		c.line("metrics", "off (no /metrics, /healthz, /readyz)")
	} else {
		c.line("metrics", "http://%s/metrics, /healthz, /readyz", cfg.MetricsListen)
	}
	c.line("log", "level %s, format %s", cfg.LogLevel, cfg.LogFormat)
}

// keyValue formats one key's value as the file would give it.
func keyValue(cfg *config.Config, name string) string {
	for _, k := range config.Keys() {
		if k.Name == name {
			return k.Get(cfg)
		}
	}
	return ""
}

// The database: what the daemon opens, checked without creating anything.

// database checks the tables the configuration uses, as the daemon would
// open them: with the embedded SQLite default or create_tables, missing
// tables are created at start, so they are no problem; with history = auto,
// missing history tables turn the history off.
func (c *checker) database(ctx context.Context) {
	cfg := &c.cfg
	dbURL, embedded, err := c.databaseURL()
	if err != nil {
		c.problem("data_dir: %v", err)
		return
	}
	create := embedded || cfg.CreateTables
	what := store.Redacted(dbURL)
	if embedded {
		what += " (embedded: db_url is empty)"
	}
	if u, err := dburl.Parse(dbURL); err == nil && u.Scheme == dburl.SQLite {
		if _, err := os.Stat(u.Database); errors.Is(err, fs.ErrNotExist) {
			if create {
				c.line("database", "%s: does not exist yet; imcd creates it and its tables at start", what)
			} else {
				c.problem("db_url: %s does not exist (create it with sql/sqlite/imc-create.sql, or set create_tables = yes)", u.Database)
			}
			c.history("created at start with the rest", create)
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, DatabaseTimeout)
	defer cancel()
	sc := store.Config{URL: dbURL, RoomsTable: cfg.RoomsTable, MembersTable: cfg.MembersTable, Logger: c.logger,
		History: cfg.History != config.HistoryOff, HistoryTable: cfg.HistoryTable, TopicsTable: cfg.TopicsTable,
		MarksTable: cfg.MarksTable, Events: cfg.IsRabbitMQ(), EventsTable: cfg.RabbitMQ.EventsTable}
	err = c.open(ctx, sc)
	switch {
	case err == nil:
		c.line("database", "%s: tables %s usable", what, strings.Join(tableNames(sc), ", "))
		c.history("tables present", true)
	case !errors.Is(err, store.ErrNoTables):
		c.problem("database %s: %v", what, err)
	case create:
		c.line("database", "%s: answers; missing tables are created at start (%v)", what, err)
		c.history("tables created at start", true)
	case cfg.History != config.HistoryAuto:
		c.problem("database %s: %v", what, err)
	default:
		// history = auto: the daemon opens without the history when only
		// its tables are missing.
		sc.History = false
		if err2 := c.open(ctx, sc); err2 != nil {
			c.problem("database %s: %v", what, err2)
			return
		}
		c.line("database", "%s: tables %s usable", what, strings.Join(tableNames(sc), ", "))
		c.history("its tables are missing (sql/<engine>/imcd-history-create.sql, or create_tables = yes)", false)
	}
}

// open opens and closes the store: Open reads every table the
// configuration uses and checks its columns and version.
func (c *checker) open(ctx context.Context, sc store.Config) error {
	db, err := store.Open(ctx, sc)
	if err != nil {
		return err
	}
	return db.Close()
}

// history reports whether the history would be on, and why.
func (c *checker) history(why string, available bool) {
	switch {
	case c.cfg.History == config.HistoryOff:
		c.line("history", "off (history = off)")
	case available:
		c.line("history", "on (%s)", why)
	default:
		c.line("history", "off: %s", why)
	}
}

// databaseURL is the daemon's choice of database: db_url, or the embedded
// SQLite file in data_dir. It creates nothing.
func (c *checker) databaseURL() (string, bool, error) {
	if c.cfg.DBURL != "" {
		return c.cfg.DBURL, false, nil
	}
	p, err := c.cfg.EmbeddedDatabase()
	if err != nil {
		return "", true, err
	}
	return "sqlite://" + p, true, nil
}

// tableNames lists the tables a store configuration reads.
func tableNames(sc store.Config) []string {
	names := []string{sc.RoomsTable, sc.MembersTable}
	if sc.History {
		names = append(names, sc.HistoryTable, sc.TopicsTable, sc.MarksTable)
	}
	if sc.Events {
		names = append(names, sc.EventsTable)
	}
	return names
}
