package opensipstest

import (
	"path/filepath"
	"testing"
	"time"
)

// TestReplayCaptured: a captured request gets the captured reply byte for
// byte, even where the fake's own handler would answer otherwise (the
// captured subscribers_list shows subscribers this fake never had).
func TestReplayCaptured(t *testing.T) {
	s := start(t, Options{})
	if err := s.ReplayCaptured(filepath.Join(wire, "mi/datagram")); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s)
	for _, name := range []string{"subscribers_list", "raise_event_no_subscriber", "event_subscribe_negative_expire"} {
		got := c.roundTrip(readWire(t, "mi/datagram/"+name+".request.json"))
		if want := readWire(t, "mi/datagram/"+name+".response.json"); string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	if n := len(s.CallsTo("subscribers_list")); n != 1 {
		t.Errorf("replayed calls recorded %d times, want 1", n)
	}
	// Anything else is served as usual.
	if got := c.roundTrip([]byte(`{"jsonrpc":"2.0","method":"core:nothing","id":5}`)); string(got) != `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":5}` {
		t.Errorf("unknown command: %s", got)
	}
	if err := s.ReplayCaptured(t.TempDir()); err == nil {
		t.Error("an empty directory was accepted")
	}
}

// TestSilent: a silent MI records requests and answers none.
func TestSilent(t *testing.T) {
	s := start(t, Options{})
	s.SetSilent(true)
	c := newClient(t, s)
	c.send([]byte(`{"jsonrpc":"2.0","method":"which","id":1}`))
	if got := c.recv(200 * time.Millisecond); got != nil {
		t.Fatalf("a silent MI answered %s", got)
	}
	if n := len(s.CallsTo("which")); n != 1 {
		t.Fatalf("%d calls recorded, want 1", n)
	}
	s.SetSilent(false)
	if got := c.roundTrip([]byte(`{"jsonrpc":"2.0","method":"which","id":2}`)); got == nil {
		t.Fatal("no answer once no longer silent")
	}
}
