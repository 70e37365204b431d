package mi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// DefaultFIFOMode is the mode of the FIFO Listen creates (mi_fifo uses 0660).
const DefaultFIFOMode os.FileMode = 0o600

// FIFO timing. The loop handles requests inline, so nothing a client does
// may block it for long.
const (
	// fifoPartialTimeout: a request that stays incomplete this long after
	// the last byte arrived is answered with a parse error and dropped.
	fifoPartialTimeout = time.Second
	// replyOpenWait and replyOpenRetry: a reply FIFO without a reader
	// (ENXIO) is retried for replyOpenWait (mi_fifo: 4 × 80 ms), since
	// opensips-cli opens it only after writing the request.
	replyOpenWait  = 500 * time.Millisecond
	replyOpenRetry = 10 * time.Millisecond
	// replyWriteTimeout bounds writing one reply to a slow reader.
	replyWriteTimeout = 5 * time.Second
	// fifoReadChunk is the read buffer's initial size (a pipe's capacity).
	fifoReadChunk = 64 << 10
)

// FIFOTransport serves the MI over a named pipe with OpenSIPS's mi_fifo
// protocol: a client creates a reply FIFO in ReplyDir, writes
// ":reply_name:{json}" into Path and reads the reply (the JSON, no newline)
// from the reply FIFO, which imcd closes after writing.
//
// Many clients may write at once (each write of at most PIPE_BUF bytes is
// atomic); requests are cut by matching JSON brackets, not by lines. The
// FIFO is also kept open for writing by imcd itself, so clients that open
// and close it without writing (opensips-cli's probe) change nothing. A
// reply name must be a plain file name (letters, digits, '_', '-', '.'; no
// '/', not starting with '.'), and the reply file must be a FIFO: anything
// else is refused and logged. A reply FIFO without a reader is given up
// after half a second. A reply FIFO that is not in ReplyDir but in
// CLIReplyDir (opensips-cli's default) gets an error saying to use
// ReplyDir, and its request is not run (transport_fifo_cli.go).
type FIFOTransport struct {
	// Server answers the requests.
	Server *Server
	// Path is the FIFO's path; Listen creates it (or reuses a FIFO of
	// imcd's user there).
	Path string
	// ReplyDir holds the clients' reply FIFOs (Path's directory when empty).
	// opensips-cli's fifo_reply_dir must name the same directory.
	ReplyDir string
	// Mode is the FIFO's permission bits (DefaultFIFOMode when 0); opening
	// it up to a group (0660) lets that group's users use the MI.
	Mode os.FileMode
	// Group is the group name or number the FIFO is given; "" leaves
	// imcd's own. imcd's user must be a member unless it is root.
	Group string

	f       *os.File
	created bool
	life    sockets.Lifecycle
}

// Listen creates the FIFO (or reuses a FIFO left at Path by imcd's own
// user), opens it for reading and writing, and sets its mode and group.
// Anything else at Path is refused: a file that is no FIFO (ErrNotFIFO), a
// FIFO that another user created (ErrFIFOOwner: whoever made it could read
// the requests, or have imcd serve a FIFO of theirs). What was opened is
// checked again, in case the path was replaced in between. ctx is accepted
// for the servers' common shape; creating a FIFO does not block.
func (t *FIFOTransport) Listen(ctx context.Context) error {
	if t.Path == "" {
		return ErrNoPath
	}
	return t.life.Listen(t.bind)
}

func (t *FIFOTransport) bind() error {
	mode := t.Mode.Perm()
	if mode == 0 {
		mode = DefaultFIFOMode
	}
	gid, err := lookupGroup(t.Group)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(t.Path)
	switch {
	case err == nil:
		if err := checkFIFO(t.Path, fi); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := syscall.Mkfifo(t.Path, uint32(mode)); err != nil {
			return &fs.PathError{Op: "mkfifo", Path: t.Path, Err: err}
		}
		t.created = true
	default:
		return err
	}
	// O_RDWR: imcd is a writer too, so the FIFO never reports end of file
	// when clients close it, and opening does not wait for a writer.
	f, err := os.OpenFile(t.Path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return errors.Join(err, t.removeCreated())
	}
	if err := secureFIFO(f, mode, gid); err != nil {
		return errors.Join(err, sockets.CloseQuietly(f), t.removeCreated())
	}
	t.f = f
	return nil
}

// LocalAddr returns the FIFO's path as a unix address, or nil before Listen.
func (t *FIFOTransport) LocalAddr() net.Addr {
	if t.f == nil {
		return nil
	}
	return &net.UnixAddr{Name: t.Path, Net: "fifo"}
}

// Open listens (unless Listen was called) and serves in a goroutine until
// Close; ctx bounds only the opening.
func (t *FIFOTransport) Open(ctx context.Context) error {
	return t.life.Open(ctx, t.Listen, t.Serve, t.failed)
}

func (t *FIFOTransport) failed(err error) {
	t.Server.logger().Error("MI FIFO transport stopped", logkey.Transport, "fifo", logkey.Err, err)
}

// Close stops serving, closes the FIFO and removes it if Listen created it.
// It waits for the request in progress and is idempotent.
func (t *FIFOTransport) Close() error {
	return t.life.Close(func() error {
		var err error
		if t.f != nil {
			err = sockets.CloseQuietly(t.f)
		}
		return errors.Join(err, t.removeCreated())
	})
}

func (t *FIFOTransport) removeCreated() error {
	if !t.created {
		return nil
	}
	t.created = false
	return sockets.RemoveFile(t.Path)
}

func (t *FIFOTransport) replyDir() string {
	if t.ReplyDir != "" {
		return t.ReplyDir
	}
	return filepath.Dir(t.Path)
}

// Serve reads requests from the FIFO Listen opened until Close, then
// returns nil. Listen opens it for reading and writing, so the stream never
// ends when the last client closes it.
func (t *FIFOTransport) Serve() error { return t.life.Serve(t.serve) }

func (t *FIFOTransport) serve() error {
	f := t.f
	log := t.Server.logger().With(logkey.Transport, "fifo", logkey.Addr, f.Name())
	reqCtx := context.Background()
	// A buffered request may hold the name, the two colons and whitespace
	// around the JSON besides the request itself.
	maxBuf := t.Server.maxRequest() + maxReplyName + 64
	buf := make([]byte, 0, min(fifoReadChunk, maxBuf))
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxBuf {
				t.dropOversize(buf, log)
				buf = buf[:0]
			} else {
				buf = append(make([]byte, 0, min(2*cap(buf), maxBuf)), buf...)
			}
		}
		// A partial request may wait fifoPartialTimeout for its end; an empty
		// buffer waits for ever. A file without deadlines just waits.
		deadline := time.Time{}
		if len(buf) > 0 {
			deadline = time.Now().Add(fifoPartialTimeout)
		}
		_ = f.SetReadDeadline(deadline)
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.dropPartial(buf, log)
			buf = buf[:0]
			continue
		case t.life.Closing() || errors.Is(err, os.ErrClosed):
			return nil
		case errors.Is(err, io.EOF):
			log.Warn("MI FIFO closed by its last writer; stopped serving it")
			return nil
		default:
			log.Warn("MI FIFO read failed", logkey.Err, err)
			time.Sleep(readRetryDelay)
			continue
		}
		buf = t.serveBuffered(reqCtx, buf, log)
	}
}

// serveBuffered answers every complete request in buf and returns buf with
// only the incomplete rest, moved to its start.
func (t *FIFOTransport) serveBuffered(ctx context.Context, buf []byte, log *slog.Logger) []byte {
	off := 0
	for off < len(buf) {
		fr, n, err := splitFIFO(buf[off:])
		off += n
		switch {
		case errors.Is(err, errFIFOIncomplete):
			return buf[:copy(buf, buf[off:])]
		case errors.Is(err, errFIFOJunk):
			log.Debug("MI FIFO: dropped bytes that are no request", logkey.Size, n)
		case errors.Is(err, errFIFOBadValue):
			t.answer(fr.reply, nil, parseErrorReply, log)
		default:
			// A request whose reply cannot be delivered safely is not run.
			t.answer(fr.reply, fr.req, func() []byte { return t.Server.handle(ctx, fr.req, 0) }, log)
		}
	}
	return buf[:0]
}

// parseErrorReply is the reply to bytes that are no JSON-RPC request.
func parseErrorReply() []byte { return jsonrpc.AppendError(nil, nullID(), jsonrpc.ErrParse) }

// dropPartial answers a request that never completed with a parse error.
func (t *FIFOTransport) dropPartial(buf []byte, log *slog.Logger) {
	fr, _, _ := splitFIFO(buf)
	log.Debug("MI FIFO: incomplete request dropped", logkey.Size, len(buf))
	if fr.reply != nil {
		t.answer(fr.reply, nil, parseErrorReply, log)
	}
}

// dropOversize answers a request longer than MaxRequest with -32600.
func (t *FIFOTransport) dropOversize(buf []byte, log *slog.Logger) {
	fr, _, _ := splitFIFO(buf)
	log.Warn("MI FIFO: request too large, dropped", logkey.Size, len(buf))
	if fr.reply != nil {
		t.answer(fr.reply, nil, func() []byte { return jsonrpc.AppendError(nil, nullID(), errTooLarge(t.Server.maxRequest())) }, log)
	}
}

// reply writes reply to the client's reply FIFO, whose name validName
// accepted; nil (a notification) is not written. Failures are logged: the
// loop goes on.
func (t *FIFOTransport) reply(name, reply []byte, log *slog.Logger) {
	if reply == nil {
		return
	}
	if err := t.writeReply(string(name), reply); err != nil {
		log.Warn("MI FIFO reply not sent", logkey.ReplyFIFO, string(name), logkey.Err, err)
	}
}

// validName reports whether name is a plain file name, logging refusals.
func (t *FIFOTransport) validName(name []byte, log *slog.Logger) bool {
	if validReplyName(name) {
		return true
	}
	log.Warn("MI FIFO request refused: the reply FIFO must be a plain file name in the reply directory",
		logkey.ReplyFIFO, string(name), logkey.Err, ErrReplyName)
	return false
}

// validReplyName accepts 1 to 255 of [A-Za-z0-9_.-], not starting with '.'.
func validReplyName(name []byte) bool {
	if len(name) == 0 || len(name) > maxReplyName || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// writeReply writes reply into ReplyDir/name (writeReplyFIFO).
func (t *FIFOTransport) writeReply(name string, reply []byte) error {
	return writeReplyFIFO(filepath.Join(t.replyDir(), name), reply, nil)
}

// writeReplyFIFO opens path for writing without blocking, without following a
// symbolic link and without becoming a controlling terminal (retrying
// while the FIFO has no reader, for replyOpenWait), checks that what it
// opened is a FIFO (and, with check, what check wants of it), writes reply
// within replyWriteTimeout and closes it.
func writeReplyFIFO(path string, reply []byte, check func(fs.FileInfo) error) error {
	giveUp := time.Now().Add(replyOpenWait)
	var f *os.File
	for {
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ENXIO) {
			return err
		}
		if time.Now().After(giveUp) {
			return fmt.Errorf("%w: %s", ErrNoReader, path)
		}
		time.Sleep(replyOpenRetry)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		return fmt.Errorf("%w: %s", ErrNotFIFO, path)
	}
	if check != nil {
		if err := check(fi); err != nil {
			return err
		}
	}
	_ = f.SetWriteDeadline(time.Now().Add(replyWriteTimeout))
	_, err = f.Write(reply)
	return err
}
