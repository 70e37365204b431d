// Package dburl parses database URLs in OpenSIPS's db_url grammar, so that
// the db_url an operator already gives OpenSIPS's imc module works for imcd
// unchanged:
//
//	mysql://user:pass@host[:port]/database[?params]
//	postgres://user:pass@host[:port]/database[?params]
//	sqlite:///absolute/path/to/file.db
//
// The host may be a name, an IPv4 address, an IPv6 address in brackets
// ("[::1]"), or a unix socket as "unix(/path)". As in OpenSIPS, %XX escapes
// in the user and password are decoded. Unlike OpenSIPS's parser, which stops
// the password at the first '/', the user part ends at the last '@' that is
// followed by a host and a '/', so a password may contain '/', ':' and '@'.
//
// The package owns parsing and redaction only; turning a URL into a driver
// configuration is the store's job. No error or String ever contains the
// password.
package dburl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Schemes, as URL.Scheme holds them after normalisation.
const (
	MySQL    = "mysql"
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// ErrBadURL is wrapped by every parsing error.
var ErrBadURL = errors.New("bad db_url")

// Error says what is wrong with a db_url. It never holds the password.
type Error struct {
	// Scheme is the URL's scheme, when it could be read.
	Scheme string
	// Reason says what is wrong, for an operator.
	Reason string
}

func (e *Error) Error() string {
	if e.Scheme == "" {
		return "bad db_url: " + e.Reason
	}
	return fmt.Sprintf("bad db_url (%s://…): %s", e.Scheme, e.Reason)
}

// Unwrap returns ErrBadURL.
func (e *Error) Unwrap() error { return ErrBadURL }

// URL is a parsed db_url.
type URL struct {
	// Scheme is MySQL, Postgres or SQLite.
	Scheme string
	// User and Password are the decoded credentials; HasPassword tells an
	// empty password ("user:@host") from none ("user@host").
	User        string
	Password    string
	HasPassword bool
	// Host is a host name or an IP address (IPv6 without brackets). Empty
	// when Socket is set, and for SQLite.
	Host string
	// Port is the TCP port, 0 for the driver's default.
	Port int
	// Socket is the unix socket path given as "unix(/path)".
	Socket string
	// Database is the database name; for SQLite, the absolute file path.
	Database string
	// Params are the "?key=value&…" parameters after the database name,
	// handed to the driver (MySQL and PostgreSQL only).
	Params url.Values
}

// String returns the URL in db_url form with the password replaced by
// "***", for logs.
func (u *URL) String() string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.Scheme == SQLite {
		b.WriteString(u.Database)
		return b.String()
	}
	if u.User != "" || u.HasPassword {
		b.WriteString(url.PathEscape(u.User))
		if u.HasPassword {
			b.WriteString(":***")
		}
		b.WriteByte('@')
	}
	switch {
	case u.Socket != "":
		b.WriteString("unix(" + u.Socket + ")")
	case strings.IndexByte(u.Host, ':') >= 0:
		b.WriteString("[" + u.Host + "]")
	default:
		b.WriteString(u.Host)
	}
	if u.Port != 0 {
		b.WriteString(":" + strconv.Itoa(u.Port))
	}
	b.WriteString("/" + u.Database)
	if len(u.Params) > 0 {
		b.WriteString("?" + u.Params.Encode())
	}
	return b.String()
}

// Redacted returns s with its password replaced by "***", for logs. A URL
// that does not parse is reduced to its scheme, since where its password
// ends cannot be known.
func Redacted(s string) string {
	u, err := Parse(s)
	if err != nil {
		if i := strings.Index(s, "://"); i > 0 && i < 16 {
			return s[:i] + "://***"
		}
		return "***"
	}
	return u.String()
}

// Parse parses a db_url.
func Parse(s string) (*URL, error) {
	if s == "" {
		return nil, &Error{Reason: "empty"}
	}
	i := strings.Index(s, "://")
	if i <= 0 {
		return nil, &Error{Reason: `no scheme: want mysql://, postgres:// or sqlite:///`}
	}
	scheme := strings.ToLower(s[:i])
	rest := s[i+3:]
	switch scheme {
	case MySQL:
	case Postgres, "postgresql":
		scheme = Postgres
	case SQLite:
		return parseSQLite(rest)
	default:
		if len(scheme) > 16 || strings.ContainsAny(scheme, "@:/") {
			return nil, &Error{Reason: `no scheme: want mysql://, postgres:// or sqlite:///`}
		}
		return nil, &Error{Reason: fmt.Sprintf("unsupported scheme %q: want mysql, postgres or sqlite", scheme)}
	}
	u := &URL{Scheme: scheme}
	if err := u.parseServer(rest); err != nil {
		return nil, &Error{Scheme: scheme, Reason: err.Error()}
	}
	return u, nil
}

func parseSQLite(rest string) (*URL, error) {
	bad := func(reason string) error { return &Error{Scheme: SQLite, Reason: reason} }
	if !strings.HasPrefix(rest, "/") {
		return nil, bad("want an absolute path, as sqlite:///var/lib/imcd/imc.db")
	}
	if strings.ContainsAny(rest, "?#") {
		return nil, bad("parameters are not supported")
	}
	if strings.IndexByte(rest, 0) >= 0 {
		return nil, bad("NUL byte in path")
	}
	p := filepath.Clean(rest)
	if p == "/" || strings.HasSuffix(rest, "/") {
		return nil, bad("the path names a directory, not a file")
	}
	return &URL{Scheme: SQLite, Database: p}, nil
}

// parseServer parses "[user[:password]@]host[:port]/database[?params]".
func (u *URL) parseServer(rest string) error {
	userinfo, hostdb, found := splitUserinfo(rest)
	if found {
		user, pass, hasPass := strings.Cut(userinfo, ":")
		u.User, u.Password, u.HasPassword = unescape(user), unescape(pass), hasPass
		if u.User == "" {
			return errors.New("empty user name before ':' or '@'")
		}
	}
	hostport, db, err := splitHost(hostdb)
	if err != nil {
		return err
	}
	if err := u.parseHostPort(hostport); err != nil {
		return err
	}
	if q := strings.IndexByte(db, '?'); q >= 0 {
		params, err := url.ParseQuery(db[q+1:])
		if err != nil {
			return errors.New("bad parameters after '?'")
		}
		u.Params = params
		db = db[:q]
	}
	u.Database = unescape(db)
	switch {
	case u.Database == "":
		return errors.New("no database name after the host")
	case strings.ContainsAny(u.Database, "/\x00"):
		return errors.New("the database name contains '/' or NUL")
	}
	return nil
}

// splitUserinfo finds the last '@' that is followed by a host and a '/'. So
// the password may hold '@' and '/', and a database name may hold '@'.
func splitUserinfo(rest string) (userinfo, hostdb string, found bool) {
	for end := len(rest); ; {
		at := strings.LastIndexByte(rest[:end], '@')
		if at < 0 {
			return "", rest, false
		}
		if strings.IndexByte(rest[at+1:], '/') > 0 {
			return rest[:at], rest[at+1:], true
		}
		end = at
	}
}

// splitHost splits "host[:port]/db" at the '/' that ends the host, which for
// "unix(/path)" is the one after the ')'.
func splitHost(s string) (hostport, db string, err error) {
	from := 0
	if strings.HasPrefix(s, "unix(") {
		end := strings.IndexByte(s, ')')
		if end < 0 {
			return "", "", errors.New("unix( without closing ')'")
		}
		from = end
	}
	slash := strings.IndexByte(s[from:], '/')
	if slash < 0 {
		return "", "", errors.New("no '/database' after the host")
	}
	return s[:from+slash], s[from+slash+1:], nil
}

func (u *URL) parseHostPort(s string) error {
	if strings.HasPrefix(s, "unix(") {
		path := s[len("unix(") : len(s)-1]
		if !strings.HasSuffix(s, ")") {
			return errors.New("text after unix(…) before '/'")
		}
		if !strings.HasPrefix(path, "/") {
			return errors.New("unix socket path must be absolute")
		}
		u.Socket = path
		return nil
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return errors.New("'[' without closing ']' in host")
		}
		host = s[1:end]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return fmt.Errorf("bad IPv6 address %q", host)
		}
		switch tail := s[end+1:]; {
		case tail == "":
		case tail[0] == ':':
			port = tail[1:]
			if port == "" {
				return errors.New("empty port after ':'")
			}
		default:
			return errors.New("text after ']' that is not ':port'")
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return errors.New("empty port after ':'")
			}
		}
		if host == "" {
			return errors.New("no host (use 127.0.0.1 or unix(/path/to/socket))")
		}
		if !validHostname(host) {
			return fmt.Errorf("bad host %q", host)
		}
	}
	if port != "" {
		// The port text is not echoed: when the user part is missing its
		// '@', what stands here may be a password.
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return errors.New("the port is not a number from 1 to 65535")
		}
		u.Port = n
	}
	u.Host = host
	return nil
}

func validHostname(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// unescape decodes %XX escapes as OpenSIPS does; a '%' not followed by two
// hex digits stays as it is.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
