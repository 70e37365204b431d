package rooms

import (
	"errors"
	"fmt"
)

var (
	// ErrBusy: the shard that owns the request's room has a full queue, or
	// too much waiting for the database.
	ErrBusy = errors.New("imcd is overloaded: request queue full")
	// ErrNotSaved: a command's changes could not be committed; nothing of it
	// was applied.
	ErrNotSaved = errors.New("changes not saved (database unavailable)")
	// ErrStopping: imcd is shutting down and takes no new work.
	ErrStopping = errors.New("imcd is stopping")
	// ErrTimeout: a command waited longer than command_timeout for the
	// database; nothing of it was attempted.
	ErrTimeout = errors.New("changes not saved (waited too long for the database)")
	// ErrNoHistory: the rooms keep no history.
	ErrNoHistory = errors.New("the rooms keep no history")
)

// errDBDown answers what needs the database while it is known down.
var errDBDown = fmt.Errorf("%w: the database is not answering", ErrNotSaved)

// errPanic is what the peer of a request that panicked is told.
var errPanic = errors.New("internal error while handling the request")
