package daemon

import "errors"

var (
	// ErrBusy: the shard that owns the request's room has a full queue.
	ErrBusy = errors.New("imcd is overloaded: request queue full")
	// ErrNotSaved: a command's changes could not be committed; nothing of it
	// was applied.
	ErrNotSaved = errors.New("changes not saved (database unavailable)")
	// ErrStopping: imcd is shutting down and takes no new work.
	ErrStopping = errors.New("imcd is stopping")
	// ErrTimeout: a command waited longer than command_timeout for the
	// database; nothing of it was attempted.
	ErrTimeout = errors.New("changes not saved (waited too long for the database)")
)
