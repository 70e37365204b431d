package mi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/sockets"
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
// each request inline. It follows the servers' lifecycle of pkg/sockets:
// Listen, Serve, Open, Close.
//
// Unlike mi_datagram, a request that is not JSON gets the JSON -32700 error
// (mi_datagram sends the text "400 Parse_error", which opensips-cli cannot
// parse), and a datagram over MaxRequest gets -32600 instead of silence.
type DatagramTransport struct {
	// Server answers the requests.
	Server *Server
	// Network is "udp" (the default, also "udp4"/"udp6") or "unixgram".
	Network string
	// Addr is host:port for udp (DefaultDatagramAddr when empty; port 0
	// picks a free one, see LocalAddr), the socket path for unixgram.
	Addr string

	conn   net.PacketConn
	unlink string // the unix socket file Listen created
	life   sockets.Lifecycle
}

// Listen opens the socket; ctx bounds only the binding. A stale unix socket
// file is replaced; any other file in the way is an error.
func (t *DatagramTransport) Listen(ctx context.Context) error {
	return t.life.Listen(func() error { return t.bind(ctx) })
}

func (t *DatagramTransport) bind(ctx context.Context) error {
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
	default:
		return fmt.Errorf("%w: %q", ErrBadNetwork, network)
	}
	conn, err := sockets.ListenPacket(ctx, sockets.Address{Network: network, Addr: addr})
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
// Close; ctx bounds only the opening.
func (t *DatagramTransport) Open(ctx context.Context) error {
	return t.life.Open(ctx, t.Listen, t.Serve, t.failed)
}

func (t *DatagramTransport) failed(err error) {
	t.Server.logger().Error("MI datagram transport stopped", logkey.Transport, "datagram", logkey.Err, err)
}

// Close stops serving, closes the socket and removes the unix socket file.
// It waits for the request in progress and is idempotent.
func (t *DatagramTransport) Close() error {
	return t.life.Close(func() error {
		err := sockets.CloseQuietly(t.conn)
		if t.unlink != "" {
			err = errors.Join(err, sockets.RemoveFile(t.unlink))
		}
		return err
	})
}

// Serve answers requests on the socket Listen opened until Close, then
// returns nil. Requests run with a context that Close does not cancel.
func (t *DatagramTransport) Serve() error { return t.life.Serve(t.serve) }

func (t *DatagramTransport) serve() error {
	conn := t.conn
	log := t.Server.logger().With(logkey.Transport, "datagram", logkey.Addr, conn.LocalAddr().String())
	reqCtx := context.Background()
	// One byte more than the limit, so that an oversize datagram (truncated
	// by the kernel to the buffer) is seen as oversize, not as a parse error.
	buf := make([]byte, t.Server.maxRequest()+1)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if t.life.Closing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			log.Warn("MI datagram read failed", logkey.Err, err)
			time.Sleep(readRetryDelay)
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
		log.Warn("MI datagram reply not sent", logkey.Peer, peer.String(), logkey.Err, err)
	}
}
