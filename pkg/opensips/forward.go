package opensips

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// Forward passes one raw MI request to OpenSIPS verbatim, from a new
// ephemeral socket (as opensips-cli does), and returns the first reply
// datagram verbatim. A notification (no "id") gets no reply from OpenSIPS,
// so Forward returns (nil, nil) once it is sent. It waits until ctx's
// deadline, or CallTimeout when that comes first; then the error wraps
// ErrTimeout and says that OpenSIPS did not answer.
//
// A JSON array, or an object without a string "method", is refused with
// ErrForbiddenRequest and never sent: either one crashes OpenSIPS's
// mi_datagram; so is an object with a member twice or in another case
// ("METHOD"), which OpenSIPS would read otherwise than this check. Other malformed requests are passed on, and OpenSIPS answers
// them with its own error.
func (c *MIClient) Forward(ctx context.Context, req []byte) ([]byte, error) {
	c.stateMu.RLock()
	ok := c.opened && !c.closed
	c.stateMu.RUnlock()
	if !ok {
		return nil, ErrClosed
	}
	method, notification, err := checkForward(req)
	if err != nil {
		return nil, err
	}
	conn, local, err := c.dialConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer func() {
		conn.Close()
		if local != "" {
			_ = os.Remove(local)
		}
	}()
	if uc, ok := conn.(*net.UnixConn); ok {
		_, err = uc.WriteToUnix(req, c.unixRaddr)
	} else {
		_, err = conn.Write(req)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if notification {
		return nil, nil
	}
	wait := c.CallTimeout
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, wait = d, time.Until(d)
	}
	_ = conn.SetReadDeadline(deadline)
	// Unblock the read if ctx is cancelled before the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, maxReply)
	for {
		var n int
		if uc, ok := conn.(*net.UnixConn); ok {
			var from *net.UnixAddr
			n, from, err = uc.ReadFromUnix(buf)
			if err == nil && !c.fromOpenSIPS(from) {
				continue
			}
		} else {
			n, err = conn.Read(buf)
		}
		switch {
		case err == nil:
			return append([]byte(nil), buf[:n]...), nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, fmt.Errorf("%w: OpenSIPS did not answer %q within %v", ErrTimeout, method, wait.Round(time.Millisecond))
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%w: OpenSIPS did not answer %q: %w", ErrUnreachable, method, err)
		default:
			return nil, err
		}
	}
}

// checkForward refuses what would crash mi_datagram (an array, an object
// without a string method) and tells whether req is a notification.
func checkForward(req []byte) (method string, notification bool, err error) {
	var p fastjson.Parser
	v, perr := p.ParseBytes(req)
	if perr != nil {
		// Malformed JSON is answered by OpenSIPS ("400 Parse_error").
		return "", false, nil
	}
	o, oerr := v.Object()
	if oerr != nil {
		return "", false, fmt.Errorf("%w: not a JSON object", ErrForbiddenRequest)
	}
	// OpenSIPS would read such a request otherwise than this check does.
	if je := jsonrpc.CheckKeys(o, "jsonrpc", "method", "params", "id"); je != nil {
		return "", false, fmt.Errorf("%w: %s", ErrForbiddenRequest, je.Data)
	}
	m := v.Get("method")
	if m == nil || m.Type() != fastjson.TypeString {
		return "", false, fmt.Errorf("%w: no method", ErrForbiddenRequest)
	}
	b, _ := m.StringBytes()
	if len(b) == 0 {
		return "", false, fmt.Errorf("%w: empty method", ErrForbiddenRequest)
	}
	return string(b), v.Get("id") == nil, nil
}
