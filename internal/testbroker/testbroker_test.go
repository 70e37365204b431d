package testbroker

import (
	"regexp"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestName: names are the test's, safe in a config file line, and fresh.
func TestName(t *testing.T) {
	t.Run("a b/c", func(t *testing.T) {
		a, b := Name(t, "q"), Name(t, "q")
		if !regexp.MustCompile(`^imcdtest\.TestName-a-b-c\.q\.[0-9a-f]{8}$`).MatchString(a) {
			t.Errorf("name %q", a)
		}
		if a == b {
			t.Errorf("the same name twice: %q", a)
		}
	})
}

// TestConnPublishReadyReconnect: what Publish sends is confirmed and ready
// in the queue; after the broker closes the connection the Conn opens a
// new one; Delete removes the queue.
func TestConnPublishReadyReconnect(t *testing.T) {
	url := URL(t)
	q := Name(t, "q")
	DeleteAtEnd(t, url, nil, []string{q})
	c := Dial(t, url)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	msg := func(body string) Message { return Message{Key: q, Publishing: amqp.Publishing{Body: []byte(body)}} }
	if err := c.Publish("", msg("1"), msg("2")); err != nil { // the default exchange routes by queue name
		t.Fatal(err)
	}
	if n := c.Ready(q); n != 2 {
		t.Fatalf("%d ready, want 2", n)
	}
	c.conn.Close() // as the broker would
	if err := c.Publish("", msg("3")); err != nil {
		t.Fatalf("publishing after the connection closed: %v", err)
	}
	if n := c.Ready(q, q); n != 6 {
		t.Fatalf("%d ready in the queue counted twice, want 6", n)
	}
	if err := Delete(url, nil, []string{q, ""}); err != nil {
		t.Fatal(err)
	}
	ch, _ = c.Channel()
	if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err == nil {
		t.Fatal("the queue is still there after Delete")
	}
}
