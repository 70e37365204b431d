package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// classifyCommon recognises the errors every driver shares: the pool's,
// the network's and the deadline's.
func classifyCommon(err error) errKind {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ENOENT): // a unix socket that is gone
		return kindUnavailable
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return kindUnavailable
	}
	return kindOther
}

// kind classifies err. An UPDATE that found no row is a conflict; a
// caller's own cancellation is not the database's fault and stays kindOther.
func (db *DB) kind(err error) errKind {
	var me *missingRowError
	switch {
	case errors.As(err, &me):
		return kindConflict
	case errors.Is(err, context.Canceled):
		return kindOther
	}
	return db.d.classify(err)
}

// wrap adds the sentinel that says what err means. The driver's error stays
// in the chain for logs.
func (db *DB) wrap(err error) error {
	switch db.kind(err) {
	case kindUnavailable, kindBusy:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case kindConflict:
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case kindTooLong:
		return fmt.Errorf("%w: %w", imc.ErrTooLong, err)
	case kindNoTable:
		return fmt.Errorf("%w: %w", ErrNoTables, err)
	}
	return err
}
