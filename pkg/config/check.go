package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/imcd-sip/imcd/pkg/imc"

	"github.com/imcd-sip/imcd/pkg/sockets"
)

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

// identifier keeps table names safe to paste into SQL: they cannot be bound
// as parameters.
func identifier(v string) error {
	if v == "" || len(v) > 64 {
		return fmt.Errorf("must be 1 to 64 characters, got %q", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("must be letters, digits and '_' (starting with a letter or '_'), got %q", v)
		}
	}
	return nil
}

// orEmpty accepts "" (the key's "off" or "none") besides what check
// accepts.
func orEmpty(check func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return check(v)
	}
}

func path(v string) error {
	if !strings.HasPrefix(v, "/") {
		return fmt.Errorf("must start with '/', got %q", v)
	}
	return nil
}

// miAddr checks an mi_datagram address: udp:host:port or unix:/path.
func miAddr(v string) error {
	_, err := sockets.Parse(v, sockets.UDP, sockets.Unixgram)
	if err != nil && !strings.HasPrefix(v, "udp:") && !strings.HasPrefix(v, "unix:") {
		// OpenSIPS's MI may be on another host: say host, not ip.
		return fmt.Errorf("must be udp:host:port or unix:/path, got %q", v)
	}
	return err
}

// miAddrList checks a comma-separated list of one or more mi_datagram
// addresses.
func miAddrList(v string) error {
	n := 0
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if err := miAddr(f); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("must name at least one socket: udp:host:port or unix:/path")
	}
	return nil
}

// hostOrEmpty checks a SIP domain: no scheme, user, port or spaces.
func hostOrEmpty(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f || strings.IndexByte("@:;,<>\"/", c) >= 0 {
			return fmt.Errorf("must be a domain such as example.com, got %q", v)
		}
	}
	return nil
}

// eventAddr checks an event socket: tcp:ip:port, udp:ip:port or unix:/path,
// the grammar of OpenSIPS's event_stream/event_datagram subscribers.
func eventAddr(v string) error {
	_, err := sockets.Parse(v)
	return err
}

func sipURI(v string) error {
	l := strings.ToLower(v)
	if !strings.HasPrefix(l, "sip:") && !strings.HasPrefix(l, "sips:") {
		return fmt.Errorf("must be a sip: or sips: URI, got %q", v)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' {
			return fmt.Errorf("forbidden byte 0x%02x in %q", c, v)
		}
	}
	return nil
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, x := range vals {
			if v == x {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, got %q", strings.Join(vals, ", "), v)
	}
}

// roomPrefix accepts what may begin a SIP user part.
func roomPrefix(v string) error {
	if _, err := imc.NewURI(v+"x", "example.com"); err != nil {
		return fmt.Errorf("must be characters a SIP user part may hold, got %q", v)
	}
	return nil
}

// domain accepts a host name or IP address as SIP URIs carry them.
func domain(v string) error {
	if _, err := imc.NewURI("x", v); err != nil {
		return fmt.Errorf("%q is not a domain", v)
	}
	return nil
}

func domainOrAny(v string) error {
	if v == imc.AnyDomain {
		return nil
	}
	return domain(v)
}

// origin accepts what a browser sends as Origin: scheme://host[:port], or
// "null".
func origin(v string) error {
	if v == "null" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q is not a web origin like https://host or https://host:port", v)
	}
	return nil
}

// miCommand accepts an MI command name: letters, digits, '_', ':', '.', '-'.
func miCommand(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.' || c == '-') {
			return fmt.Errorf("%q is not an MI command name", v)
		}
	}
	return nil
}
