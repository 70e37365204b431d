package opensips

import (
	"fmt"
	"net"
	"strings"
)

// miAddr is a parsed mi_datagram address.
type miAddr struct {
	network string // "udp" or "unixgram"
	addr    string // host:port or socket path
}

// parseMIAddr reads "udp:host:port", "host:port" or "unix:/path" (the forms
// OpenSIPS's mi_datagram socket_name and opensips-cli use).
func parseMIAddr(s string) (miAddr, error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if p == "" {
			return miAddr{}, fmt.Errorf("opensips: empty unix socket path in MI address %q", s)
		}
		return miAddr{network: "unixgram", addr: p}, nil
	case strings.HasPrefix(s, "udp:"):
		s = strings.TrimPrefix(s, "udp:")
	case strings.HasPrefix(s, "/"):
		return miAddr{network: "unixgram", addr: s}, nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return miAddr{}, fmt.Errorf("opensips: bad MI address %q: %w", s, err)
	}
	return miAddr{network: "udp", addr: s}, nil
}
