package rooms

import "github.com/imcd-sip/imcd/pkg/imc"

// handleReload makes this shard's rooms equal to the database's
// (Runtime.Reload), but for rooms with a command being saved (their commit
// decides).
func (s *shard) handleReload(p *reloadPart) {
	var rep ReloadReport
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
		if s.behind[k] != nil {
			rep.Busy++
			continue
		}
		s.rooms.Delete(k)
		delete(s.doubtful, k)
		rep.Removed++
	}
	for k, r := range p.rooms {
		if s.behind[k] != nil {
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
