package delivery

import "errors"

// Errors of the scheduler. Wrapped errors carry the details; test with
// errors.Is.
var (
	// ErrBusy: Submit refused a whole batch because taking it would exceed
	// the queue limits (the scheduler is saturated, or the room already has
	// too much waiting). Nothing of the batch was queued: tell the sender
	// the room is busy.
	ErrBusy = errors.New("delivery: busy")
	// ErrClosed: the scheduler is not open (or closed while the notice
	// waited, reported as Aborted).
	ErrClosed = errors.New("delivery: closed")
	// ErrNoEndpoint: Open was called without any endpoint to send through.
	ErrNoEndpoint = errors.New("delivery: no OpenSIPS endpoint")
)
