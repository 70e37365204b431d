package opensipstest

import "testing"

// New starts a fake OpenSIPS for one test (or benchmark) and closes it when
// the test ends; it fails the test if the fake cannot start, or if anything
// sent to it would have crashed the real mi_datagram (a request without a
// method, a JSON array): imcd must never send such a thing.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if n := s.Crashes(); n != 0 {
			tb.Errorf("%d requests would have crashed OpenSIPS's mi_datagram", n)
		}
		s.Close()
	})
	return s
}
