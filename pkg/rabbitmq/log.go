package rabbitmq

import (
	"net"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"
)

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
