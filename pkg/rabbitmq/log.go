package rabbitmq

import (
	"io"
	"log/slog"

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

// brokerName is the URL without its credentials, for logs.
func brokerName(url string) string {
	u, err := amqp.ParseURI(url)
	if err != nil {
		return "(unparsable URL)"
	}
	u.Password = ""
	u.Username = ""
	return u.String()
}
