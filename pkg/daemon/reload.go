package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/mi"
)

// reloadPart is one shard's share of a reload.
type reloadPart struct {
	rooms  map[string]*imc.Room // the database's rooms of this shard
	report mi.ReloadReport      // what the shard did, once done says nil
	done   chan error
}

// Reload reads every room from the database again and makes memory equal
// to it, for when someone else changed the tables (an operator, a
// migration, the native module). Each shard replaces its own rooms in its
// goroutine, between two requests, so no request sees half a reload.
func (d *Daemon) Reload(ctx context.Context) (mi.ReloadReport, error) {
	start := time.Now()
	rooms, err := d.store.Load(ctx)
	if err != nil {
		return mi.ReloadReport{}, fmt.Errorf("reload: %w", err)
	}
	parts := make([]*reloadPart, len(d.shards))
	for i := range parts {
		parts[i] = &reloadPart{rooms: make(map[string]*imc.Room), done: make(chan error, 1)}
	}
	for _, r := range rooms {
		parts[d.shardFor(r.Key()).id].rooms[r.Key()] = r
	}
	var total mi.ReloadReport
	for i, s := range d.shards {
		if err := d.put(ctx, s, task{kind: taskReload, reload: parts[i]}); err != nil {
			return total, err
		}
	}
	for i, p := range parts {
		select {
		case err := <-p.done:
			if err != nil {
				return total, fmt.Errorf("reload: shard %d: %w", i, err)
			}
			r := p.report
			total.Added += r.Added
			total.Removed += r.Removed
			total.Changed += r.Changed
			total.Busy += r.Busy
		case <-ctx.Done():
			return total, ctx.Err()
		}
	}
	total.Rooms, total.Took = len(rooms), time.Since(start)
	d.notice("rooms reloaded from the database", logkey.Rooms, total.Rooms, logkey.Added, total.Added, logkey.Removed, total.Removed,
		logkey.Changed, total.Changed, logkey.Busy, total.Busy, logkey.Took, total.Took.Round(time.Millisecond))
	return total, nil
}

// handleReload makes this shard's rooms equal to the database's, but for
// rooms with a command being saved (their commit decides).
func (s *shard) handleReload(p *reloadPart) {
	var rep mi.ReloadReport
	var gone []string
	s.mu.RLock()
	s.rooms.EachRoom(func(r *imc.Room) bool {
		if _, ok := p.rooms[r.Key()]; !ok {
			gone = append(gone, r.Key())
		}
		return true
	})
	s.mu.RUnlock()
	s.mu.Lock()
	for _, k := range gone {
		if s.lines[k] != nil {
			rep.Busy++
			continue
		}
		s.rooms.Delete(k)
		delete(s.doubtful, k)
		rep.Removed++
	}
	for k, r := range p.rooms {
		if s.lines[k] != nil {
			rep.Busy++
			continue
		}
		old := s.rooms.Room(k)
		switch {
		case old == nil:
			rep.Added++
		case !sameRoom(old, r):
			rep.Changed++
		default:
			continue
		}
		s.putStored(k, r)
		delete(s.doubtful, k)
	}
	s.mu.Unlock()
	p.report = rep
	p.done <- nil
}
