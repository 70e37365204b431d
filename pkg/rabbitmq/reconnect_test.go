package rabbitmq

import (
	"net/url"
	"os"
	"strconv"
	"testing"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// vhost creates a virtual host of the test's own, so that closing "all
// connections" of it touches no one else's, and returns its URL and name.
func vhost(t *testing.T, base string) (string, string) {
	t.Helper()
	name := testbroker.Name(t, "vhost")
	rabbitmqctl(t, "add_vhost", name)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", name) })
	rabbitmqctl(t, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath = "/"+name, "/"+url.PathEscape(name)
	return u.String(), name
}

// interrupted runs the reconnect scenario: events 1..50 are published and
// applied, except 41..50 whose verdicts are held; cut ends every
// connection; 51..100 are published after. Every event must be applied, the
// held ones again (redelivered, new session), in order.
func interrupted(t *testing.T, url string, cut func()) {
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	offered := map[string]int{} // guarded by the recorder
	rec := newRecorder(func(_ int, ev opensips.Event) (error, error, bool) {
		offered[ev.Req.Body]++
		n, _ := strconv.Atoi(ev.Req.Body)
		return nil, nil, n > 40 && n <= 50 && offered[ev.Req.Body] == 1
	})
	obs := newCounter()
	c := openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs, Backoff: Backoff{Min: 50e6, Max: 500e6}})
	a.publishLines(top.Exchange, 1, 50)
	before := rec.waitEvents(t, 50)
	eventually(t, "40 acknowledged", func() bool { return obs.get(OutcomeAcked) == 40 })

	cut()
	eventually(t, "reconnected", func() bool { return obs.upCount() >= 2 && c.Ready() == nil })
	for _, done := range rec.held() {
		done(nil) // the old session's verdicts: acknowledged nowhere
	}
	a = newAdmin(t, url) // the test's own connection was cut too
	a.publishLines(top.Exchange, 51, 100)
	evs := rec.waitEvents(t, 110)
	eventually(t, "all acknowledged", func() bool { return obs.get(OutcomeAcked) == 100 })
	after := evs[50:]
	inOrder(t, numbers(t, append(before[:40:40], after...)), 100)
	for _, ev := range after[:10] {
		if !ev.Origin.Redelivered || ev.Origin.Session == before[0].Origin.Session {
			t.Fatalf("held event %s came again with origin %+v", ev.Req.Body, ev.Origin)
		}
	}
	for _, ev := range after[10:] {
		if ev.Origin.Redelivered || ev.Origin.Session != after[0].Origin.Session {
			t.Fatalf("event %s: origin %+v", ev.Req.Body, ev.Origin)
		}
	}
}

// TestReconnectAfterConnectionsClosed has the broker close every connection
// (rabbitmqctl close_all_connections, in a vhost of the test's own): the
// Consumer reconnects under new sessions, the deliveries it had not
// acknowledged come again in order, and nothing is lost.
func TestReconnectAfterConnectionsClosed(t *testing.T) {
	u, name := vhost(t, testbroker.URL(t))
	interrupted(t, u, func() {
		rabbitmqctl(t, "close_all_connections", "--vhost", name, "--limit", "100", "imcd test: connections force-closed")
	})
}

// TestReconnectAfterBrokerRestart stops and starts the broker application
// mid-stream. Other people's connections go down with it, so it runs only
// with IMCD_TEST_RABBITMQ_RESTART=1.
func TestReconnectAfterBrokerRestart(t *testing.T) {
	if os.Getenv("IMCD_TEST_RABBITMQ_RESTART") != "1" {
		t.Skip("restarts the broker: set IMCD_TEST_RABBITMQ_RESTART=1")
	}
	u := testbroker.URL(t)
	interrupted(t, u, func() {
		rabbitmqctl(t, "stop_app")
		rabbitmqctl(t, "start_app")
		rabbitmqctl(t, "await_startup")
	})
}
