package opensipstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReplayCaptured makes the fake answer every MI request that is byte for
// byte one of the captured requests in dir (files NAME.request.json) with
// the captured reply (NAME.response.json or .txt), whatever its own
// handlers would say: a pass-through test then gets the real OpenSIPS's
// exact bytes. Captures without a reply (the crashes) are skipped. Other
// requests are served as usual.
func (s *Server) ReplayCaptured(dir string) error {
	reqs, err := filepath.Glob(filepath.Join(dir, "*.request.json"))
	if err != nil {
		return err
	}
	replay := make(map[string][]byte, len(reqs))
	for _, r := range reqs {
		name := strings.TrimSuffix(r, ".request.json")
		reply, err := os.ReadFile(name + ".response.json")
		if err != nil {
			if reply, err = os.ReadFile(name + ".response.txt"); err != nil {
				continue
			}
		}
		req, err := os.ReadFile(r)
		if err != nil {
			return err
		}
		replay[string(req)] = reply
	}
	if len(replay) == 0 {
		return fmt.Errorf("opensipstest: no captured request/reply pairs in %s", dir)
	}
	s.mu.Lock()
	s.replay = replay
	s.mu.Unlock()
	return nil
}

// SetSilent makes the MI receive and record requests but answer none, as
// an OpenSIPS whose MI process is stuck: callers see their requests time
// out (not a closed port, which Down gives).
func (s *Server) SetSilent(silent bool) {
	s.mu.Lock()
	s.silent = silent
	s.mu.Unlock()
}

// replayed returns the captured reply for raw, or whether the fake is
// silent; serveRequest consults it after recording the call.
func (s *Server) replayed(raw []byte) (reply []byte, silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replay[string(raw)], s.silent
}
