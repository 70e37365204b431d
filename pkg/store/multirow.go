package store

import (
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
)

// multiRow builds "INSERT … VALUES (?, …), (?, …) …" statements for n rows
// and keeps them, since a batch writer sends the same few sizes over and
// over (and PostgreSQL's driver prepares each distinct text once).
type multiRow struct {
	bind   int
	prefix string // up to and including "VALUES "
	tuple  string // "(?, ?, …)"
	suffix string // after the last tuple: ON CONFLICT …

	mu    sync.Mutex
	built map[int]string
}

func newMultiRow(bind int, prefix string, cols int, suffix string) *multiRow {
	return &multiRow{
		bind:   bind,
		prefix: prefix,
		tuple:  "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")",
		suffix: suffix,
		built:  map[int]string{},
	}
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
