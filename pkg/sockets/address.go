package sockets

import (
	"fmt"
	"net"
	"strings"
)

// Networks an Address names, as the net package spells them.
const (
	TCP      = "tcp"
	UDP      = "udp"
	Unixgram = "unixgram"
)

// Address is one socket in OpenSIPS's grammar: "tcp:ip:port" (event_stream),
// "udp:ip:port" (event_datagram, mi_datagram) or "unix:/path" (a unix
// datagram socket). The zero Address is "no socket".
type Address struct {
	// Network is TCP, UDP or Unixgram.
	Network string
	// Addr is "ip:port", or the absolute path of a unix socket.
	Addr string
}

// Parse reads s in OpenSIPS's grammar. allowed lists the networks the
// caller accepts (all three when empty); anything else is an error that
// says what was expected.
func Parse(s string, allowed ...string) (Address, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	var a Address
	switch {
	case ok && (scheme == TCP || scheme == UDP):
		if err := CheckHostPort(rest); err != nil {
			return Address{}, err
		}
		a = Address{Network: scheme, Addr: rest}
	case ok && scheme == "unix":
		if !strings.HasPrefix(rest, "/") {
			return Address{}, fmt.Errorf("unix socket path must be absolute, got %q", rest)
		}
		a = Address{Network: Unixgram, Addr: rest}
	default:
		return Address{}, fmt.Errorf("must be %s, got %q", grammar(allowed), s)
	}
	if len(allowed) > 0 && !contains(allowed, a.Network) {
		return Address{}, fmt.Errorf("must be %s, got %q", grammar(allowed), s)
	}
	return a, nil
}

// String writes a back in OpenSIPS's grammar, "" for the zero Address.
func (a Address) String() string {
	switch a.Network {
	case "":
		return ""
	case Unixgram:
		return "unix:" + a.Addr
	}
	return a.Network + ":" + a.Addr
}

// IsZero reports whether a names no socket.
func (a Address) IsZero() bool { return a.Network == "" }

// Bound returns the address a socket actually bound, in OpenSIPS's grammar:
// "tcp:127.0.0.1:43211" for a listener opened on port 0. It is what imcd
// tells OpenSIPS to send events to.
func Bound(addr net.Addr) Address {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return Address{Network: TCP, Addr: a.String()}
	case *net.UDPAddr:
		return Address{Network: UDP, Addr: a.String()}
	case *net.UnixAddr:
		return Address{Network: Unixgram, Addr: a.Name}
	case nil:
		return Address{}
	}
	return Address{Network: addr.Network(), Addr: addr.String()}
}

// CheckHostPort checks "host:port" with a port present; an empty host (every
// address) is allowed, if unwise.
func CheckHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("must be ip:port, got %q", v)
	}
	if port == "" {
		return fmt.Errorf("missing port in %q", v)
	}
	return nil
}

func grammar(allowed []string) string {
	if len(allowed) == 0 {
		allowed = []string{TCP, UDP, Unixgram}
	}
	forms := make([]string, 0, len(allowed))
	for _, n := range allowed {
		switch n {
		case TCP:
			forms = append(forms, "tcp:ip:port")
		case UDP:
			forms = append(forms, "udp:ip:port")
		case Unixgram:
			forms = append(forms, "unix:/path")
		}
	}
	if len(forms) == 1 {
		return forms[0]
	}
	return strings.Join(forms[:len(forms)-1], ", ") + " or " + forms[len(forms)-1]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
