// Package testbroker gives tests the machine's test RabbitMQ broker: its URL
// (IMCD_TEST_RABBITMQ_URL, or the default that scripts/test-services.sh sets
// up), whether it answers (a test skips, or fails under IMCD_TEST_REQUIRE_DB
// or IMCD_TEST_REQUIRE_RABBITMQ), names of the test's own for what it
// declares, deleted when it ends, and a connection that publishes with
// publisher confirms. The broker is shared by every package's tests, so
// nothing here deletes anything it did not name itself.
//
// It imports nothing of imcd's: pkg/rabbitmq's own tests use it, and a
// package they import cannot import pkg/rabbitmq. The layer above it, imcd's
// topology published to as the OpenSIPS script does, is
// internal/testbroker/feed.
package testbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the broker a fresh RabbitMQ installation offers on loopback,
// as scripts/test-services.sh leaves it. It is config.DefaultRabbitMQURL,
// written again: pkg/config imports pkg/rabbitmq, whose tests import this
// package.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// Patience bounds the wait for the broker's confirms of one Publish.
const Patience = time.Minute

var (
	reachMu  sync.Mutex
	reachErr = map[string]error{} // per test binary: the broker is dialled once
)

// URL returns the test broker's URL, and skips the test (or fails it when
// IMCD_TEST_REQUIRE_DB or IMCD_TEST_REQUIRE_RABBITMQ is set to anything)
// when the broker does not answer.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("IMCD_TEST_RABBITMQ_URL")
	if url == "" {
		url = DefaultURL
	}
	reachMu.Lock()
	err, done := reachErr[url]
	if !done {
		err = Check(url)
		reachErr[url] = err
	}
	reachMu.Unlock()
	if err != nil {
		Unavailable(tb, "no RabbitMQ at %s (%v); scripts/test-services.sh starts one, or set IMCD_TEST_RABBITMQ_URL", hostPort(url), err)
	}
	return url
}

// Unavailable ends a test that lacks something of RabbitMQ's it needs (the
// broker, a plugin, a program): it fails when IMCD_TEST_REQUIRE_DB or
// IMCD_TEST_REQUIRE_RABBITMQ is set to anything (scripts/test.sh sets the
// first), and is skipped otherwise.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("IMCD_TEST_REQUIRE_DB") != "" || os.Getenv("IMCD_TEST_REQUIRE_RABBITMQ") != "" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// Check reports whether the broker at url takes a connection.
func Check(url string) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	return conn.Close()
}

// hostPort is url's broker without its credentials, for messages.
func hostPort(url string) string {
	u, err := amqp.ParseURI(url)
	if err != nil {
		return "(unparsable URL)"
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// Name returns a name no other test run uses, for an exchange, a queue or a
// vhost the test declares: imcdtest.<test name>.<what>.<random>.
func Name(tb testing.TB, what string) string {
	var b [4]byte
	rand.Read(b[:])
	return "imcdtest." + unsafeName.ReplaceAllString(tb.Name(), "-") + "." + what + "." + hex.EncodeToString(b[:])
}

// DeleteAtEnd deletes queues and exchanges from url's broker when the test
// ends; "" names are passed over. A failure is logged: the test's verdict
// is made by then.
func DeleteAtEnd(tb testing.TB, url string, exchanges, queues []string) {
	tb.Cleanup(func() {
		if err := Delete(url, exchanges, queues); err != nil {
			tb.Logf("testbroker: deleting %v %v: %v", exchanges, queues, err)
		}
	})
}

// Delete deletes queues, then exchanges, from url's broker on a connection
// of its own (the test's may be closed by then); "" names are passed over.
// The first error is returned; a queue or exchange that does not exist is
// none.
func Delete(url string, exchanges, queues []string) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	var errs []error
	for _, q := range queues {
		if q != "" {
			_, err := ch.QueueDelete(q, false, false, false)
			errs = append(errs, err)
		}
	}
	for _, x := range exchanges {
		if x != "" {
			errs = append(errs, ch.ExchangeDelete(x, false, false))
		}
	}
	return errors.Join(errs...)
}

// Conn is a test's own connection to the broker, for publishing and
// inspecting: one channel in confirm mode, opened again when the broker
// has closed it (a restart, a forced close, a passive declare of a queue
// that is gone). It is not safe for concurrent use.
type Conn struct {
	tb   testing.TB
	url  string
	conn *amqp.Connection
	ch   *amqp.Channel
}

// Dial connects to url, failing the test when it cannot; the connection
// is closed when the test ends.
func Dial(tb testing.TB, url string) *Conn {
	tb.Helper()
	c := &Conn{tb: tb, url: url}
	if err := c.connect(); err != nil {
		tb.Fatalf("RabbitMQ at %s: %v", hostPort(url), err)
	}
	tb.Cleanup(c.close)
	return c
}

// connect (re)opens the connection and its confirming channel.
func (c *Conn) connect() error {
	c.close()
	conn, err := amqp.Dial(c.url)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return err
	}
	c.conn, c.ch = conn, ch
	return nil
}

func (c *Conn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.ch = nil, nil
	}
}

// Channel returns the confirming channel, reconnecting first when it has
// been closed.
func (c *Conn) Channel() (*amqp.Channel, error) {
	if c.ch == nil || c.ch.IsClosed() {
		if err := c.connect(); err != nil {
			return nil, err
		}
	}
	return c.ch, nil
}

// Message is one message to publish, with its routing key.
type Message struct {
	Key string
	amqp.Publishing
}

// Publish publishes msgs to exchange in order, mandatory (the broker
// returns what no queue takes), without waiting for each confirm before
// the next publish, so that a backlog builds at once; it returns once the
// broker has confirmed them all, or after Patience. A message the broker
// refuses (a nack) is an error.
func (c *Conn) Publish(exchange string, msgs ...Message) error {
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	dcs := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		dc, err := ch.PublishWithDeferredConfirm(exchange, m.Key, true, false, m.Publishing)
		if err != nil {
			return err
		}
		dcs = append(dcs, dc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	for i, dc := range dcs {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("testbroker: message %d of %d not confirmed: %w", i+1, len(dcs), err)
		}
		if !ok {
			return fmt.Errorf("testbroker: message %d of %d refused by the broker", i+1, len(dcs))
		}
	}
	return nil
}

// Ready is the number of messages ready in queues (not delivered, or given
// back). It fails the test when one cannot be inspected.
func (c *Conn) Ready(queues ...string) int {
	c.tb.Helper()
	n := 0
	for _, q := range queues {
		ch, err := c.Channel()
		if err != nil {
			c.tb.Fatal(err)
		}
		st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		if err != nil {
			c.tb.Fatal(err)
		}
		n += st.Messages
	}
	return n
}
