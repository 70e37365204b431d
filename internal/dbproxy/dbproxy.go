// Package dbproxy is a TCP proxy between imcd and its database, for tests
// and benchmarks that need the database to fail in a controlled way
// without stopping the machine's shared server: Cut drops every connection
// and refuses new ones (a stopped server), Hold stops forwarding bytes
// while keeping the connections open (a server that hangs), and, on the
// MySQL protocol, CutAtCommit cuts the connection that sends the next
// COMMIT just before forwarding it or just after the server answered it (a
// commit in doubt, landed or not). Recognising the COMMIT packet makes the
// cut land at the same point of the protocol every time, unlike a timed
// cut.
package dbproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Protocol says how the proxy reads the byte streams.
type Protocol uint8

const (
	// Raw copies bytes as they come (any protocol; no CutAtCommit).
	Raw Protocol = iota
	// MySQL reads MySQL packets, so that CutAtCommit can find COMMIT.
	MySQL
)

// Commit says where CutAtCommit cuts.
type Commit uint8

const (
	// BeforeCommit: the COMMIT never reaches the server, which rolls the
	// transaction back when it sees the connection close.
	BeforeCommit Commit = iota + 1
	// AfterCommit: the COMMIT reaches the server, which commits and
	// answers; the answer never reaches the client.
	AfterCommit
)

func (c Commit) String() string {
	if c == BeforeCommit {
		return "cut before COMMIT"
	}
	return "cut after COMMIT"
}

// comQuery is the MySQL protocol's COM_QUERY command byte.
const comQuery = 0x03

// Proxy forwards TCP connections to a target.
type Proxy struct {
	target string
	proto  Protocol
	ln     net.Listener
	// Cuts receives one value per commit cut made.
	Cuts chan Commit

	mu       sync.Mutex
	cut      bool
	held     bool
	released chan struct{} // closed by Release
	armed    Commit
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// Start listens on 127.0.0.1, port 0, and forwards to target.
func Start(target string, proto Protocol) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, proto: proto, ln: ln, Cuts: make(chan Commit, 16), conns: map[net.Conn]struct{}{},
		released: make(chan struct{})}
	close(p.released)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port, for the db_url.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Cut()
	p.Release()
	p.wg.Wait()
}

// Cut drops every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore accepts connections again after Cut.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Hold stops forwarding in both directions: connections stay open, new
// ones are accepted, and no byte moves until Release. To the client the
// server has stopped answering.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		p.held = true
		p.released = make(chan struct{})
	}
}

// Release forwards again what Hold kept, and what follows.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.held = false
		close(p.released)
	}
}

// CutAtCommit arms the proxy: the next COMMIT on any connection is cut as
// c says (MySQL protocol only).
func (p *Proxy) CutAtCommit(c Commit) {
	p.mu.Lock()
	p.armed = c
	p.mu.Unlock()
}

func (p *Proxy) take() Commit {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.armed
	p.armed = 0
	return c
}

// gate blocks while the proxy holds, and reports false once the proxy is
// closed.
func (p *Proxy) gate() bool {
	p.mu.Lock()
	released, closed := p.released, p.closed
	p.mu.Unlock()
	<-released
	return !closed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.cut || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) pipe(client net.Conn) {
	if !p.gate() {
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, server) {
		client.Close()
		server.Close()
		return
	}
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
	fromServer, fromClient := p.reader(server), p.reader(client)
	// cutReply is set when the COMMIT just forwarded is to be answered by
	// nobody: the server's next packet, its answer, ends the connection.
	cutReply := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer closeBoth()
		for {
			pkt, err := fromServer()
			if err != nil {
				return
			}
			select {
			case <-cutReply:
				p.Cuts <- AfterCommit
				return
			default:
			}
			if !p.gate() {
				return
			}
			if _, err := client.Write(pkt); err != nil {
				return
			}
		}
	}()
	defer func() { <-done }()
	defer closeBoth()
	for {
		pkt, err := fromClient()
		if err != nil {
			return
		}
		if p.proto == MySQL && isCommit(pkt) {
			switch p.take() {
			case BeforeCommit:
				p.Cuts <- BeforeCommit
				return
			case AfterCommit:
				cutReply <- struct{}{}
			}
		}
		if !p.gate() {
			return
		}
		if _, err := server.Write(pkt); err != nil {
			return
		}
	}
}

// reader returns what reads r: whatever bytes are there (Raw), or one
// MySQL packet (a 3-byte little-endian payload length, a sequence byte,
// the payload). What it returns is valid until its next call: the pipe
// forwards it before reading on, so one buffer per direction serves.
func (p *Proxy) reader(r io.Reader) func() ([]byte, error) {
	buf := make([]byte, 32<<10)
	if p.proto == MySQL {
		return func() ([]byte, error) {
			if _, err := io.ReadFull(r, buf[:4]); err != nil {
				return nil, err
			}
			n := 4 + (int(buf[0]) | int(buf[1])<<8 | int(buf[2])<<16)
			if n > len(buf) {
				buf = append(buf, make([]byte, n-len(buf))...)
			}
			if _, err := io.ReadFull(r, buf[4:n]); err != nil {
				return nil, err
			}
			return buf[:n], nil
		}
	}
	return func() ([]byte, error) {
		n, err := r.Read(buf)
		if n > 0 {
			return buf[:n], nil
		}
		if err == nil {
			err = errors.New("dbproxy: empty read")
		}
		return nil, err
	}
}

// isCommit reports whether pkt is the first packet of a command (sequence
// 0) that is COM_QUERY "COMMIT", as go-sql-driver sends it.
func isCommit(pkt []byte) bool {
	return len(pkt) > 5 && pkt[3] == 0 && pkt[4] == comQuery &&
		bytes.EqualFold(bytes.TrimSpace(pkt[5:]), []byte("COMMIT"))
}
