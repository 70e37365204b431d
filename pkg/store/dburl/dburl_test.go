package dburl

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	f := func(in string, want URL) {
		t.Helper()
		got, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			return
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", in, *got, want)
		}
	}
	f("mysql://opensips:opensipsrw@localhost/opensips",
		URL{Scheme: MySQL, User: "opensips", Password: "opensipsrw", HasPassword: true, Host: "localhost", Database: "opensips"})
	f("mysql://u:p@127.0.0.1:3307/db",
		URL{Scheme: MySQL, User: "u", Password: "p", HasPassword: true, Host: "127.0.0.1", Port: 3307, Database: "db"})
	f("MySQL://u@db.example.com/imc",
		URL{Scheme: MySQL, User: "u", Host: "db.example.com", Database: "imc"})
	f("mysql://u:@h/db",
		URL{Scheme: MySQL, User: "u", HasPassword: true, Host: "h", Database: "db"})
	f("mysql://h/db", URL{Scheme: MySQL, Host: "h", Database: "db"})
	f("mysql://h:3306/db", URL{Scheme: MySQL, Host: "h", Port: 3306, Database: "db"})
	// A password may hold '/', ':' and '@'.
	f("mysql://u:pa/ss:w@rd@h:1/db",
		URL{Scheme: MySQL, User: "u", Password: "pa/ss:w@rd", HasPassword: true, Host: "h", Port: 1, Database: "db"})
	f("mysql://u:a/b@h/db",
		URL{Scheme: MySQL, User: "u", Password: "a/b", HasPassword: true, Host: "h", Database: "db"})
	// %XX escapes are decoded, as OpenSIPS does.
	f("mysql://u%40x:p%2Fq@h/db",
		URL{Scheme: MySQL, User: "u@x", Password: "p/q", HasPassword: true, Host: "h", Database: "db"})
	f("mysql://u:100%@h/db",
		URL{Scheme: MySQL, User: "u", Password: "100%", HasPassword: true, Host: "h", Database: "db"})
	f("mysql://u:p@[::1]:3306/db",
		URL{Scheme: MySQL, User: "u", Password: "p", HasPassword: true, Host: "::1", Port: 3306, Database: "db"})
	f("mysql://u:p@[fe80::1%eth0]/db",
		URL{Scheme: MySQL, User: "u", Password: "p", HasPassword: true, Host: "fe80::1%eth0", Database: "db"})
	f("mysql://u:p@unix(/run/mysqld/mysqld.sock)/db",
		URL{Scheme: MySQL, User: "u", Password: "p", HasPassword: true, Socket: "/run/mysqld/mysqld.sock", Database: "db"})
	f("mysql://h/db@x", URL{Scheme: MySQL, Host: "h", Database: "db@x"})
	f("mysql://u:p@h/db?tls=true&x=1",
		URL{Scheme: MySQL, User: "u", Password: "p", HasPassword: true, Host: "h", Database: "db",
			Params: map[string][]string{"tls": {"true"}, "x": {"1"}}})
	f("postgres://imcd:imcd@127.0.0.1:5432/imcd_test",
		URL{Scheme: Postgres, User: "imcd", Password: "imcd", HasPassword: true, Host: "127.0.0.1", Port: 5432, Database: "imcd_test"})
	f("postgresql://u@h/db?sslmode=disable",
		URL{Scheme: Postgres, User: "u", Host: "h", Database: "db", Params: map[string][]string{"sslmode": {"disable"}}})
	f("postgres://u@unix(/var/run/postgresql)/db",
		URL{Scheme: Postgres, User: "u", Socket: "/var/run/postgresql", Database: "db"})
	f("sqlite:///var/lib/imcd/imc.db", URL{Scheme: SQLite, Database: "/var/lib/imcd/imc.db"})
	f("sqlite:///tmp//x/../imc.db", URL{Scheme: SQLite, Database: "/tmp/imc.db"})
}

func TestParseErrors(t *testing.T) {
	f := func(in, wantReason string) {
		t.Helper()
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q): no error", in)
			return
		}
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("Parse(%q): %v does not wrap ErrBadURL", in, err)
		}
		if !strings.Contains(err.Error(), wantReason) {
			t.Errorf("Parse(%q) = %q, want it to say %q", in, err, wantReason)
		}
	}
	f("", "empty")
	f("localhost/db", "no scheme")
	f("oracle://u:p@h/db", `unsupported scheme "oracle"`)
	f("mysql://u:p@h", "no '/database'")
	f("mysql://u:p@h/", "no database name")
	f("mysql://u:p@h:0/db", "port")
	f("mysql://u:p@h:99999/db", "port")
	f("mysql://u:p@h:/db", "empty port")
	f("mysql://u:p@/db", "port") // no host: "u:p@" reads as host u, port "p@"
	f("mysql:///db", "no host")
	f("mysql://u:p@[::1/db", "']'")
	f("mysql://u:p@[zz::1]/db", "bad IPv6")
	f("mysql://u:p@[::1]x/db", "after ']'")
	f("mysql://u:p@unix(/s/db", "')'")
	f("mysql://u:p@unix(s)/db", "absolute")
	f("mysql://u:p@h o/db", "bad host")
	f("mysql://:p@h/db", "empty user")
	f("mysql://u:p@h/a/b", "contains '/'")
	f("sqlite://relative.db", "absolute path")
	f("sqlite:///", "directory")
	f("sqlite:///var/lib/", "directory")
	f("sqlite:///x.db?mode=ro", "parameters")
}

// No error message and no redacted form may contain the password.
func TestNoPasswordLeak(t *testing.T) {
	const secret = "S3cr/et:@pw"
	for _, in := range []string{
		"mysql://u:" + secret + "@h/db",
		"mysql://u:" + secret + "@h:x/db",
		"mysql://u:" + secret + "@h",
		"mysql://u:" + secret + "@[::1/db",
		"mysql://u:" + secret,
		"postgres://u:" + secret + "@unix(x)/db",
		"mysql://u:S3cr/et",
		"bogus://u:" + secret + "@h/db",
	} {
		if _, err := Parse(in); err != nil && strings.Contains(err.Error(), "S3cr") {
			t.Errorf("Parse(%q) error leaks the password: %v", in, err)
		}
		if r := Redacted(in); strings.Contains(r, "S3cr") {
			t.Errorf("Redacted(%q) = %q leaks the password", in, r)
		}
	}
}

func TestRedacted(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Redacted(in); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
	f("mysql://imcd:imcd@127.0.0.1:3306/imcd_test", "mysql://imcd:***@127.0.0.1:3306/imcd_test")
	f("mysql://imcd@h/db", "mysql://imcd@h/db")
	f("mysql://h/db", "mysql://h/db")
	f("mysql://u:p@[::1]:3306/db", "mysql://u:***@[::1]:3306/db")
	f("mysql://u:p@unix(/run/m.sock)/db", "mysql://u:***@unix(/run/m.sock)/db")
	f("postgres://u:p@h/db?sslmode=disable", "postgres://u:***@h/db?sslmode=disable")
	f("sqlite:///var/lib/imcd/imc.db", "sqlite:///var/lib/imcd/imc.db")
	f("mysql://u:pw@h", "mysql://***")
	f("garbage", "***")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"mysql://u:p@h:1/db", "mysql://u:p@[::1]:3306/db?x=1", "mysql://u:p@unix(/s)/db",
		"postgres://u@h/db", "sqlite:///a/b.db", "mysql://u:a/b@c@h/d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error %v does not wrap ErrBadURL", err)
			}
			return
		}
		if u.Password != "" && len(u.Password) >= 4 && strings.Contains(u.String(), u.Password) &&
			!strings.Contains(strings.Replace(s, u.Password, "", 1), u.Password) {
			t.Fatalf("String() %q shows the password", u.String())
		}
	})
}
