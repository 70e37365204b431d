package store

import (
	"context"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
)

// multiRow builds "INSERT … VALUES (?, …), (?, …) …" statements for n rows
// (or "… IN (?, ?, …)" lists of n values) and keeps them, since a batch
// writer sends the same few sizes over and over (and PostgreSQL's driver
// prepares each distinct text once).
type multiRow struct {
	bind   int
	prefix string // up to and including "VALUES " (or "IN (")
	tuple  string // "(?, ?, …)" (or "?")
	cols   int    // placeholders in tuple
	suffix string // after the last tuple: ON CONFLICT … (or ")")

	mu    sync.Mutex
	built map[int]string
}

func newMultiRow(bind int, prefix string, cols int, suffix string) *multiRow {
	return &multiRow{
		bind:   bind,
		prefix: prefix,
		tuple:  "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")",
		cols:   cols,
		suffix: suffix,
		built:  map[int]string{},
	}
}

// newInList builds statements whose n values fill an IN list: prefix ends
// with "IN (", suffix starts with ")".
func newInList(bind int, prefix, suffix string) *multiRow {
	return &multiRow{bind: bind, prefix: prefix, tuple: "?", cols: 1, suffix: suffix, built: map[int]string{}}
}

// sql returns the statement for n rows.
func (m *multiRow) sql(n int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q, ok := m.built[n]; ok {
		return q
	}
	var b strings.Builder
	b.Grow(len(m.prefix) + n*(len(m.tuple)+2) + len(m.suffix))
	b.WriteString(m.prefix)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.tuple)
	}
	b.WriteString(m.suffix)
	q := sqlx.Rebind(m.bind, b.String())
	if len(m.built) < 1024 {
		m.built[n] = q
	}
	return q
}

// exec runs the statement over the rows in args (cols values each), at
// most historyChunkLines rows a statement, and returns the rows affected.
func (m *multiRow) exec(ctx context.Context, on execer, args []any) (int64, error) {
	var affected int64
	for len(args) > 0 {
		n := min(len(args)/m.cols, historyChunkLines)
		res, err := on.ExecContext(ctx, m.sql(n), args[:m.cols*n]...)
		if err != nil {
			return affected, err
		}
		c, err := res.RowsAffected()
		if err != nil {
			return affected, err
		}
		affected += c
		args = args[m.cols*n:]
	}
	return affected, nil
}
