package mi

import (
	"context"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// ReloadReport is what a reload of the rooms from the database changed in
// memory, as imc:reload answers it.
type ReloadReport struct {
	// Rooms is how many rooms the database holds.
	Rooms int
	// Added, Removed and Changed count the rooms that differed from memory.
	Added, Removed, Changed int
	// Busy counts rooms left as they were because a command of theirs was
	// being saved.
	Busy int
	// Took is how long the reload took.
	Took time.Duration
}

// Reloader reloads every room from the database (the daemon does).
type Reloader interface {
	Reload(ctx context.Context) (ReloadReport, error)
}

// ReloadCommand is imc:reload (3.x-style alias imc_reload): the rooms are
// read again from the database and memory made equal to it, for when
// someone else changed the tables. It answers
// {"ROOMS":n,"ADDED":a,"REMOVED":r,"CHANGED":c,"BUSY":b,"TOOK_MS":t}.
func ReloadCommand(r Reloader) Command {
	return Command{Name: "imc:reload", Aliases: []string{"imc_reload"},
		Handler: func(ctx context.Context, _ *fastjson.Value) ([]byte, error) {
			rep, err := r.Reload(ctx)
			if err != nil {
				return nil, err
			}
			b := append([]byte(`{"ROOMS":`), strconv.Itoa(rep.Rooms)...)
			b = append(append(b, `,"ADDED":`...), strconv.Itoa(rep.Added)...)
			b = append(append(b, `,"REMOVED":`...), strconv.Itoa(rep.Removed)...)
			b = append(append(b, `,"CHANGED":`...), strconv.Itoa(rep.Changed)...)
			b = append(append(b, `,"BUSY":`...), strconv.Itoa(rep.Busy)...)
			b = append(append(b, `,"TOOK_MS":`...), strconv.FormatInt(rep.Took.Milliseconds(), 10)...)
			return append(b, '}'), nil
		}}
}
