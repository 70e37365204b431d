package sockets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// ErrNotSocket: a unix socket path is taken by a file that is not a socket,
// which imcd never removes.
var ErrNotSocket = errors.New("sockets: path exists and is not a socket")

// Listen opens a stream listener on a; ctx bounds the call.
func Listen(ctx context.Context, a Address) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, a.Network, a.Addr)
}

// ListenPacket opens a datagram socket on a (UDP or unixgram); ctx bounds
// the call. A unix socket file left by an earlier run is replaced first
// (RemoveStale); the caller removes the file when it closes the socket.
func ListenPacket(ctx context.Context, a Address) (net.PacketConn, error) {
	switch a.Network {
	case UDP, "udp4", "udp6":
	case Unixgram:
		if err := RemoveStale(a.Addr); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("sockets: %q is not a datagram network", a.Network)
	}
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, a.Network, a.Addr)
}

// RemoveStale removes a unix socket file left at path by an earlier run and
// refuses (ErrNotSocket) to remove anything else. A missing path is fine.
func RemoveStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	return os.Remove(path)
}

// RemoveFile removes path if it is there; what Close calls for the unix
// socket files a server created.
func RemoveFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// CloseQuietly closes c, ignoring that it was closed already.
func CloseQuietly(c interface{ Close() error }) error {
	if c == nil {
		return nil
	}
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}
