package rabbitmq

import (
	"io"
	"log/slog"
	"net"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// childLogger returns l (or a discarding logger when l is nil) with the
// system attribute set.
func childLogger(l *slog.Logger, system string) *slog.Logger {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l.With(logkey.System, system)
}

// Redacted returns the broker of url without its credentials, for logs:
// amqp://host:port[/vhost].
func Redacted(url string) string {
	u, err := amqp.ParseURI(url)
	if err != nil {
		return "(unparsable URL)"
	}
	// Not u.String(): without the credentials it writes "amqp://:@host".
	name := u.Scheme + "://" + net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
	if u.Vhost != "/" {
		name += "/" + u.Vhost
	}
	return name
}

// CheckURL reports whether url is an AMQP URL the Consumer and Publisher
// accept.
func CheckURL(url string) error {
	_, err := amqp.ParseURI(url)
	return err
}
