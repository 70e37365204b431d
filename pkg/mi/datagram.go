package mi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"time"
)

// DefaultDatagramAddr is where the datagram transport listens when Addr is
// empty: loopback, next to OpenSIPS's usual mi_datagram port 8080.
const DefaultDatagramAddr = "127.0.0.1:8081"

// maxDatagramReply is the largest reply sent: the largest UDP payload over
// IPv4. A longer reply becomes a CodeReplyTooLarge error.
const maxDatagramReply = 65507

// readRetryDelay keeps a persistent socket error from spinning the loop.
const readRetryDelay = 50 * time.Millisecond

// DatagramTransport serves the MI over datagrams, like OpenSIPS's
// mi_datagram: one JSON-RPC request per datagram, the reply sent to the
// sender's address. One goroutine reads with a reused buffer and handles
// each request inline.
//
// Unlike mi_datagram, a request that is not JSON gets the JSON -32700 error
// (mi_datagram sends the text "400 Parse_error", which opensips-cli cannot
// parse), and a datagram over MaxRequest gets -32600 instead of silence.
type DatagramTransport struct {
	// Server answers the requests.
	Server *Server
	// Network is "udp" (the default, also "udp4"/"udp6") or "unixgram".
	Network string
	// Addr is host:port for udp (DefaultDatagramAddr when empty), the
	// socket path for unixgram.
	Addr string

	conn   net.PacketConn
	unlink string // the unix socket file Listen created
	life   lifecycle
}

// Listen opens the socket. A stale unix socket file is replaced; any other
// file in the way is an error.
func (t *DatagramTransport) Listen() error {
	if t.conn != nil {
		return ErrListening
	}
	network, addr := t.Network, t.Addr
	switch network {
	case "", "udp", "udp4", "udp6":
		if network == "" {
			network = "udp"
		}
		if addr == "" {
			addr = DefaultDatagramAddr
		}
	case "unixgram":
		if err := removeStaleSocket(addr); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: %q", ErrBadNetwork, network)
	}
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		return err
	}
	if network == "unixgram" {
		t.unlink = addr
	}
	t.conn = conn
	return nil
}

// LocalAddr returns the address Listen bound, or nil before Listen.
func (t *DatagramTransport) LocalAddr() net.Addr {
	if t.conn == nil {
		return nil
	}
	return t.conn.LocalAddr()
}

// Open listens (unless Listen was called) and serves in a goroutine until
// Close or until ctx ends.
func (t *DatagramTransport) Open(ctx context.Context) error {
	if t.conn == nil {
		if err := t.Listen(); err != nil {
			return err
		}
	}
	conn := t.conn
	return t.life.start(ctx, func(ctx context.Context) { _ = t.Serve(ctx, conn) })
}

// Close stops serving, closes the socket and removes the unix socket file.
// It waits for the request in progress and is idempotent.
func (t *DatagramTransport) Close() error {
	return t.life.stop(func() error {
		var err error
		if t.conn != nil {
			err = closeQuietly(t.conn)
		}
		if t.unlink != "" {
			if rerr := os.Remove(t.unlink); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
		return err
	})
}

// Serve answers requests on conn until ctx ends or conn is closed; it closes
// conn when ctx ends. Requests run with a context that Close does not
// cancel, so the one in progress gets its reply.
func (t *DatagramTransport) Serve(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	log := t.Server.logger().With(keyTransport, "datagram", keyAddr, conn.LocalAddr().String())
	reqCtx := context.WithoutCancel(ctx)
	// One byte more than the limit, so that an oversize datagram (truncated
	// by the kernel to the buffer) is seen as oversize, not as a parse error.
	buf := make([]byte, t.Server.maxRequest()+1)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			log.Warn("MI datagram read failed", keyErr, err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(readRetryDelay):
			}
			continue
		}
		t.serveOne(reqCtx, conn, buf[:n], peer, log)
	}
}

func (t *DatagramTransport) serveOne(ctx context.Context, conn net.PacketConn, req []byte, peer net.Addr, log *slog.Logger) {
	reply := t.Server.handle(ctx, req, maxDatagramReply)
	if reply == nil {
		return
	}
	if peer == nil {
		log.Debug("MI datagram from an unbound socket: no address to reply to")
		return
	}
	if _, err := conn.WriteTo(reply, peer); err != nil {
		log.Warn("MI datagram reply not sent", keyPeer, peer.String(), keyErr, err)
	}
}

// removeStaleSocket removes a unix socket file left by an earlier run, and
// refuses to remove anything else.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	return os.Remove(path)
}
