package opensips

import (
	"fmt"
	"strings"

	"github.com/imcd-sip/imcd/pkg/sockets"
)

// miAddr is a parsed mi_datagram address.
type miAddr struct {
	network string // "udp" or "unixgram"
	addr    string // host:port or socket path
}

// parseMIAddr reads "udp:host:port", "host:port", "unix:/path" or "/path"
// (the forms OpenSIPS's mi_datagram socket_name and opensips-cli use) with
// the one socket grammar of pkg/sockets.
func parseMIAddr(s string) (miAddr, error) {
	switch {
	case strings.HasPrefix(s, "/"):
		s = "unix:" + s
	case !strings.HasPrefix(s, "udp:") && !strings.HasPrefix(s, "unix:"):
		s = "udp:" + s
	}
	a, err := sockets.Parse(s, sockets.UDP, sockets.Unixgram)
	if err != nil {
		return miAddr{}, fmt.Errorf("opensips: bad MI address: %w", err)
	}
	return miAddr{network: a.Network, addr: a.Addr}, nil
}
