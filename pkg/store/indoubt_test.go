package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store/dburl"
)

// commitCut says where a mysqlProxy cuts a connection at its next COMMIT.
type commitCut uint8

const (
	// cutBeforeCommit: the COMMIT never reaches the server, which rolls
	// the transaction back when it sees the connection close.
	cutBeforeCommit commitCut = iota + 1
	// cutAfterCommit: the COMMIT reaches the server, which answers it (so
	// it has committed); the answer never reaches the client.
	cutAfterCommit
)

func (c commitCut) String() string {
	if c == cutBeforeCommit {
		return "cut before COMMIT"
	}
	return "cut after COMMIT"
}

// comQuery is the MySQL protocol's COM_QUERY command byte.
const comQuery = 0x03

// mysqlProxy forwards MySQL connections packet by packet and, when armed,
// cuts the connection that sends the next COMMIT (a COM_QUERY whose text is
// "COMMIT", as go-sql-driver sends it), before forwarding it or after the
// server's answer to it. Recognising the packet makes the cut land at the
// same point of the protocol every time, unlike a timed cut.
type mysqlProxy struct {
	target string
	addr   string
	ln     net.Listener
	cuts   chan commitCut // one value per cut made

	mu    sync.Mutex
	armed commitCut
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startMySQLProxy(t *testing.T, target string) *mysqlProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &mysqlProxy{target: target, addr: ln.Addr().String(), ln: ln, cuts: make(chan commitCut, 1), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.pipe(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// arm makes the next COMMIT on any connection cut it as c says.
func (p *mysqlProxy) arm(c commitCut) {
	p.mu.Lock()
	p.armed = c
	p.mu.Unlock()
}

// take returns the armed cut, if any, and disarms.
func (p *mysqlProxy) take() commitCut {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.armed
	p.armed = 0
	return c
}

func (p *mysqlProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *mysqlProxy) pipe(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, server)
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	// cutReply is set when the COMMIT just forwarded is to be answered by
	// nobody: the server's next packet, its answer, ends the connection.
	cutReply := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer closeBoth()
		for {
			pkt, err := readPacket(server)
			if err != nil {
				return
			}
			select {
			case <-cutReply:
				p.cuts <- cutAfterCommit
				return
			default:
			}
			if _, err := client.Write(pkt); err != nil {
				return
			}
		}
	}()
	defer func() { <-done }()
	defer closeBoth()
	for {
		pkt, err := readPacket(client)
		if err != nil {
			return
		}
		if isCommit(pkt) {
			switch p.take() {
			case cutBeforeCommit:
				p.cuts <- cutBeforeCommit
				return
			case cutAfterCommit:
				cutReply <- struct{}{}
			}
		}
		if _, err := server.Write(pkt); err != nil {
			return
		}
	}
}

// readPacket reads one MySQL packet: a 3-byte little-endian payload
// length, a sequence byte, the payload. It returns header and payload.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(append(hdr[:3:3], 0)))
	pkt := make([]byte, 4+n)
	copy(pkt, hdr[:])
	if _, err := io.ReadFull(r, pkt[4:]); err != nil {
		return nil, err
	}
	return pkt, nil
}

// isCommit reports whether pkt is the first packet of a command (sequence
// 0) that is COM_QUERY "COMMIT".
func isCommit(pkt []byte) bool {
	return len(pkt) > 5 && pkt[3] == 0 && pkt[4] == comQuery &&
		bytes.EqualFold(bytes.TrimSpace(pkt[5:]), []byte("COMMIT"))
}

// proxied opens a store on direct's tables through a mysqlProxy.
func proxied(t *testing.T, direct *testDB) (*mysqlProxy, *testDB) {
	t.Helper()
	u, _ := dburl.Parse(engineURL(dburl.MySQL))
	if u.Socket != "" {
		t.Skip("the test database is on a unix socket")
	}
	port := u.Port
	if port == 0 {
		port = 3306
	}
	proxy := startMySQLProxy(t, net.JoinHostPort(u.Host, strconv.Itoa(port)))
	host, pport, _ := net.SplitHostPort(proxy.addr)
	u.Host, u.Port = host, atoi(pport)
	cfg := direct.cfg
	cfg.URL = formatURL(u)
	return proxy, openWith(t, cfg)
}

// The connection dies during COMMIT of a create-room, delete-room,
// add-member or remove-member change set, once before the COMMIT reaches
// MariaDB and once after MariaDB has committed: Apply reports ErrInDoubt
// both times (it cannot tell them apart), and LoadRooms then gives exactly
// what the tables hold: the change set in full or not at all.
func TestInDoubtLoadRooms(t *testing.T) {
	needEngine(t, dburl.MySQL)
	ctx := context.Background()
	direct := openTest(t, dburl.MySQL)
	proxy, db := proxied(t, direct)
	owner, bob := uri(t, "sip:owner@h"), uri(t, "sip:bob@h")
	type tc struct {
		name         string
		setup, apply func(room imc.URI) []imc.Change
	}
	for _, c := range []tc{
		{"create-room", nil, func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, imc.RoomPrivate), addMember(r, owner, imc.MemberOwner)}
		}},
		{"delete-room", func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, 0), addMember(r, owner, imc.MemberOwner), addMember(r, bob, 0)}
		}, func(r imc.URI) []imc.Change { return []imc.Change{deleteRoom(r)} }},
		{"add-member", func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, 0), addMember(r, owner, imc.MemberOwner)}
		}, func(r imc.URI) []imc.Change { return []imc.Change{addMember(r, bob, imc.MemberAdmin)} }},
		{"remove-member", func(r imc.URI) []imc.Change {
			return []imc.Change{createRoom(r, 0), addMember(r, owner, imc.MemberOwner), addMember(r, bob, 0)}
		}, func(r imc.URI) []imc.Change { return []imc.Change{removeMember(r, bob)} }},
	} {
		for _, cut := range []commitCut{cutBeforeCommit, cutAfterCommit} {
			room := imc.URI{User: c.name + "-" + strconv.Itoa(int(cut)), Host: "h"}
			model := imc.NewRooms()
			if c.setup != nil {
				direct.apply(t, c.setup(room)...)
				model.Apply(c.setup(room))
			}
			changes := c.apply(room)
			if cut == cutAfterCommit {
				model.Apply(changes)
			}
			want := dumpMap(map[string]*imc.Room{room.Key(): model.Room(room.Key())})

			proxy.arm(cut)
			err := db.Apply(ctx, changes)
			if !errors.Is(err, ErrInDoubt) || !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s, %s: Apply = %v, want ErrInDoubt and ErrUnavailable", c.name, cut, err)
			}
			select {
			case got := <-proxy.cuts:
				if got != cut {
					t.Fatalf("%s: proxy made %s, want %s", c.name, got, cut)
				}
			default:
				t.Fatalf("%s, %s: Apply returned %v without the proxy cutting at COMMIT", c.name, cut, err)
			}
			// The store that saw the doubt re-reads the room through a new
			// connection; the truth, through a connection of its own.
			got, err := db.LoadRooms(ctx, []imc.URI{room})
			if err != nil {
				t.Fatalf("%s, %s: LoadRooms: %v", c.name, cut, err)
			}
			if g := dumpMap(got); g != want {
				t.Errorf("%s, %s: LoadRooms after the doubt:\n%s\nwant:\n%s", c.name, cut, g, want)
			}
			truth, err := direct.LoadRooms(ctx, []imc.URI{room})
			if err != nil {
				t.Fatal(err)
			}
			if g := dumpMap(truth); g != want {
				t.Errorf("%s, %s: the tables hold:\n%s\nwant:\n%s", c.name, cut, g, want)
			}
		}
	}
	// The store goes on through the proxy, with nothing armed.
	db.apply(t, createRoom(uri(t, "sip:after@h"), 0), addMember(uri(t, "sip:after@h"), owner, imc.MemberOwner))
}

// ApplyOnce resolves a COMMIT in doubt by itself: cut before the COMMIT
// reached MariaDB, its retry applies the event; cut after MariaDB
// committed, its retry finds the key under its own claim. Either way the
// caller hears "applied", and the change set is in the tables once.
func TestApplyOnceInDoubt(t *testing.T) {
	needEngine(t, dburl.MySQL)
	ctx := context.Background()
	direct := openWith(t, historyConfig(t, dburl.MySQL))
	proxy, db := proxied(t, direct)
	owner := uri(t, "sip:owner@h")
	for _, cut := range []commitCut{cutBeforeCommit, cutAfterCommit} {
		room := imc.URI{User: "once-" + strconv.Itoa(int(cut)), Host: "h"}
		key := EventKey("call-"+room.User, "1", "tag")
		changes := []imc.Change{createRoom(room, 0), addMember(room, owner, imc.MemberOwner)}
		proxy.arm(cut)
		applied, err := db.ApplyOnce(ctx, key, changes)
		if !applied || err != nil {
			t.Errorf("%s: ApplyOnce = %v, %v; want applied", cut, applied, err)
		}
		select {
		case got := <-proxy.cuts:
			if got != cut {
				t.Fatalf("proxy made %s, want %s", got, cut)
			}
		default:
			t.Fatalf("%s: no cut at COMMIT", cut)
		}
		got, err := direct.LoadRooms(ctx, []imc.URI{room})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := dumpMap(got), "sip:"+room.AOR()+" flag=0: *owner@h\nabsent: \n"; g != w {
			t.Errorf("%s: tables hold:\n%s\nwant:\n%s", cut, g, w)
		}
		if applied, err := direct.ApplyOnce(ctx, key, changes); applied || err != nil {
			t.Errorf("%s: the same event again = %v, %v", cut, applied, err)
		}
	}
}
