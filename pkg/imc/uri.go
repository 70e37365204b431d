package imc

import (
	"fmt"
	"strings"
)

// MaxFieldLen is the width of every text column of the standard imc tables
// (char(64)); longer values are refused at the command rather than silently
// truncated by the database.
const MaxFieldLen = 64

// URI is a SIP address reduced to what conferencing needs: the user and the
// host. Identity is user@host compared case-insensitively; scheme, port,
// parameters and headers of the input are validated and then dropped, as the
// native module does (it stores only username and domain).
//
// A URI is only ever built by ParseURI, ParseArg or NewURI, which refuse any
// byte that could break out of a SIP header (CR, LF, NUL, other controls,
// space, '<', '>', '"', ';', '\\', ...). That is what makes String safe to
// paste into the headers of a t_uac_dlg request.
type URI struct {
	User string
	Host string
}

// URIError says what is wrong with a URI; it wraps ErrBadURI.
type URIError struct {
	Input  string
	Reason string
}

// Error says which input was refused and why.
func (e *URIError) Error() string { return fmt.Sprintf("bad SIP URI %q: %s", e.Input, e.Reason) }

// Unwrap returns ErrBadURI.
func (e *URIError) Unwrap() error { return ErrBadURI }

// NewURI validates user and host and returns the URI made of them.
func NewURI(user, host string) (URI, error) {
	u := URI{User: user, Host: host}
	if reason := u.check(); reason != "" {
		return URI{}, &URIError{user + "@" + host, reason}
	}
	return u, nil
}

// ParseURI parses a SIP or SIPS URI ("sip:alice@example.com:5060;transport=tcp")
// or a scheme-less "alice@example.com". A user part is required.
func ParseURI(s string) (URI, error) {
	rest := s
	if len(rest) >= 4 && strings.EqualFold(rest[:4], "sip:") {
		rest = rest[4:]
	} else if len(rest) >= 5 && strings.EqualFold(rest[:5], "sips:") {
		rest = rest[5:]
	} else if i := strings.IndexByte(rest, ':'); i >= 0 {
		if at := strings.IndexByte(rest, '@'); at < 0 || i < at {
			return URI{}, &URIError{s, "scheme must be sip: or sips:"}
		}
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return URI{}, &URIError{s, "no user part"}
	}
	user, hostport := rest[:at], rest[at+1:]
	// Parameters and headers are dropped; they are validated below only to
	// the extent that no control byte may hide in them.
	if i := strings.IndexAny(hostport, ";?"); i >= 0 {
		if err := checkTail(s, hostport[i:]); err != nil {
			return URI{}, err
		}
		hostport = hostport[:i]
	}
	host, err := splitPort(s, hostport)
	if err != nil {
		return URI{}, err
	}
	u := URI{User: user, Host: host}
	if reason := u.check(); reason != "" {
		return URI{}, &URIError{s, reason}
	}
	return u, nil
}

// ParseArg parses a room or user argument of an IMC command: a bare name
// ("chat-1", completed with defaultHost), "name@host", or a full sip:/sips:
// URI, optionally in angle brackets as users copy it from a header.
func ParseArg(arg, defaultHost string) (URI, error) {
	if len(arg) > 2 && arg[0] == '<' && arg[len(arg)-1] == '>' {
		arg = arg[1 : len(arg)-1]
	}
	if strings.IndexByte(arg, '@') < 0 && strings.IndexByte(arg, ':') < 0 {
		return NewURI(arg, defaultHost)
	}
	return ParseURI(arg)
}

func splitPort(input, hostport string) (string, error) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", &URIError{input, "unterminated IPv6 reference"}
		}
		host, rest := hostport[:end+1], hostport[end+1:]
		if rest != "" {
			if rest[0] != ':' || !isPort(rest[1:]) {
				return "", &URIError{input, "bad port"}
			}
		}
		return host, nil
	}
	if i := strings.IndexByte(hostport, ':'); i >= 0 {
		if !isPort(hostport[i+1:]) {
			return "", &URIError{input, "bad port"}
		}
		return hostport[:i], nil
	}
	return hostport, nil
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

func checkTail(input, tail string) error {
	for i := 0; i < len(tail); i++ {
		if c := tail[i]; c < 0x21 || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' {
			return &URIError{input, fmt.Sprintf("forbidden byte 0x%02x in parameters", c)}
		}
	}
	return nil
}

// check returns what is wrong with u, or "" when it is fit to be put in a
// header. The caller builds the error, so a valid URI costs no allocation.
func (u URI) check() string {
	if u.User == "" {
		return "empty user part"
	}
	if u.Host == "" {
		return "empty host"
	}
	for i := 0; i < len(u.User); i++ {
		if !userByte[u.User[i]] {
			return fmt.Sprintf("forbidden byte 0x%02x in user part", u.User[i])
		}
		if u.User[i] == '%' && (i+2 >= len(u.User) || !isHex(u.User[i+1]) || !isHex(u.User[i+2])) {
			return "bad %-escape in user part"
		}
	}
	if !validHost(u.Host) {
		return "bad host"
	}
	return ""
}

// userByte is the conservative subset of RFC 3261 user characters imcd
// accepts: unreserved, escaped and the user-unreserved marks that cannot end
// a URI inside a header ("&", "=", "+", "$", ","). ';', '?' and '/' are left
// out on purpose: in "<sip:a;b@h>" they would start parameters or headers.
var userByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.!~*'()%&=+$," {
		t[c] = true
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func validHost(h string) bool {
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		for i := 1; i < len(h)-1; i++ {
			c := h[i]
			if !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		return true
	}
	if h[0] == '.' || h[0] == '-' || h[len(h)-1] == '-' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// String returns the URI as "sip:user@host", the form the native module uses
// for room and member addresses.
func (u URI) String() string { return "sip:" + u.User + "@" + u.Host }

// AOR returns "user@host" as given, the form used in chat prefixes.
func (u URI) AOR() string { return u.User + "@" + u.Host }

// Key returns the identity of the URI: "user@host" in lower case.
func (u URI) Key() string { return strings.ToLower(u.User) + "@" + strings.ToLower(u.Host) }

// KeyBufLen is a buffer size that holds the key of any URI whose parts fit
// the tables' columns, for AppendKey into a stack buffer.
const KeyBufLen = 2*MaxFieldLen + 1

// AppendKey appends Key() to b without allocating when b has room: hot
// paths look maps up with string(u.AppendKey(buf[:0])), which Go does
// without a copy. A URI built by this package is ASCII; anything else falls
// back to Key's Unicode lower-casing.
func (u URI) AppendKey(b []byte) []byte {
	if !isASCII(u.User) || !isASCII(u.Host) {
		return append(b, u.Key()...)
	}
	b = appendLowerASCII(b, u.User)
	b = append(b, '@')
	return appendLowerASCII(b, u.Host)
}

// IsZero reports whether u is the zero URI.
func (u URI) IsZero() bool { return u.User == "" && u.Host == "" }

// Equal reports whether u and v are the same identity.
func (u URI) Equal(v URI) bool {
	return strings.EqualFold(u.User, v.User) && strings.EqualFold(u.Host, v.Host)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func appendLowerASCII(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
