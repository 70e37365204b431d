package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// startProxy starts a database proxy for one test (see internal/dbproxy):
// Cut makes the database go away, Restore brings it back, CutAtCommit (on
// MySQL) cuts a connection at its COMMIT. The database server itself is
// never touched: other tests use it at the same time.
func startProxy(t *testing.T, target string, proto dbproxy.Protocol) *dbproxy.Proxy {
	t.Helper()
	p, err := dbproxy.Start(target, proto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// proxiedConfig starts a proxy to direct's server and returns direct's
// configuration with the URL going through it.
func proxiedConfig(t *testing.T, direct *testDB, proto dbproxy.Protocol) (*dbproxy.Proxy, Config) {
	t.Helper()
	url := engineURL(direct.Engine())
	if u, _ := dburl.Parse(url); u.Socket != "" {
		t.Skip("the test database is on a unix socket")
	}
	proxy := startProxy(t, testdb.HostPort(url), proto)
	cfg := direct.cfg
	cfg.URL = testdb.Through(url, proxy.Addr())
	return proxy, cfg
}

// The database goes away mid-run and comes back: Apply fails fast with
// ErrUnavailable while it is away, leaves nothing half-applied (not even
// when the connection dies inside a transaction), and the very next Apply
// after it returns succeeds on the same store.
func TestOutage(t *testing.T) {
	for _, engine := range []string{dburl.MySQL, dburl.Postgres} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			needEngine(t, engine)
			ctx := context.Background()
			direct := openTest(t, engine)
			proxy, cfg := proxiedConfig(t, direct, dbproxy.Raw)
			cfg.ApplyTimeout = 2 * time.Second
			db := openWith(t, cfg)

			room, locked := uri(t, "sip:room@h"), uri(t, "sip:locked@h")
			alice, bob := uri(t, "sip:alice@h"), uri(t, "sip:bob@h")
			db.apply(t, createRoom(room, 0), addMember(room, alice, imc.MemberOwner))
			db.apply(t, createRoom(locked, 0), addMember(locked, alice, imc.MemberOwner))
			before := dump(direct.load(t))

			// 1. The connection dies inside a transaction: its first change
			// is executed, its second waits for a row lock held elsewhere.
			tx, err := direct.db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(direct.q.updateRoom, 0, "locked", "h"); err != nil {
				t.Fatal(err)
			}
			result := make(chan error, 1)
			go func() {
				result <- db.Apply(ctx, []imc.Change{addMember(room, bob, 0), updateRoom(locked, imc.RoomPrivate)})
			}()
			time.Sleep(300 * time.Millisecond)
			proxy.Cut()
			start := time.Now()
			err = <-result
			t.Logf("cut mid-transaction: %v", err)
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInDoubt) {
				t.Errorf("Apply cut mid-transaction = %v, want ErrUnavailable (not in doubt)", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Apply took %v after the cut", d)
			}
			tx.Rollback()
			if got := dump(direct.load(t)); got != before {
				t.Errorf("half-applied change set after the cut:\n%s\nwant:\n%s", got, before)
			}

			// 2. While the database is away every call fails fast.
			for i := range 3 {
				start := time.Now()
				err := db.Apply(ctx, []imc.Change{createRoom(uri(t, "sip:new@h"), 0), addMember(uri(t, "sip:new@h"), bob, imc.MemberOwner)})
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("Apply %d while down = %v, want ErrUnavailable", i, err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("Apply %d while down took %v", i, d)
				}
			}
			if err := db.Ping(ctx); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Ping while down = %v, want ErrUnavailable", err)
			}
			if got := dump(direct.load(t)); got != before {
				t.Errorf("tables changed while down:\n%s\nwant:\n%s", got, before)
			}

			// 3. Back: the next command succeeds, on the same store.
			proxy.Restore()
			if err := db.Apply(ctx, []imc.Change{addMember(room, bob, 0), updateRoom(locked, imc.RoomPrivate)}); err != nil {
				t.Fatalf("first Apply after the database returned: %v", err)
			}
			if err := db.Ping(ctx); err != nil {
				t.Errorf("Ping after the database returned: %v", err)
			}
			want := "sip:locked@h flag=1: *alice@h\nsip:room@h flag=0: *alice@h bob@h\n"
			wantRooms(t, direct.load(t), want)
			wantRooms(t, db.load(t), want)

			// 4. A second outage, with the pool full of idle connections.
			proxy.Cut()
			if err := db.Apply(ctx, []imc.Change{removeMember(room, bob)}); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Apply in the second outage = %v", err)
			}
			proxy.Restore()
			if err := db.Apply(ctx, []imc.Change{removeMember(room, bob)}); err != nil {
				t.Errorf("first Apply after the second outage: %v", err)
			}
		})
	}
}
