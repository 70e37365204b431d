package mi

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// opensips-cli's default. It creates its reply FIFO in its fifo_reply_dir,
// /tmp unless told otherwise, and then waits for ever for a reply: a
// request whose reply FIFO imcd looked for only in its own reply directory
// ended in silence, and an exit code 0. imcd now looks in /tmp too, but
// only to tell the client where its reply FIFO must be: it does not run the
// request and writes nothing else there, because /tmp is not a safe place
// for a reply (opensips-cli makes its reply FIFO readable by every local
// user, so any of them could read what imcd's MI answers). docs/security.md
// explains the checks.

// CLIReplyDir is opensips-cli's default fifo_reply_dir.
const CLIReplyDir = "/tmp"

// ErrReplyFIFOOwner: a reply FIFO outside the reply directory belongs to a
// user who could not have sent the request (one who cannot write imcd's
// command FIFO); imcd writes nothing into it.
var ErrReplyFIFOOwner = errors.New("mi: reply FIFO owned by a user who may not use imcd's MI")

// CodeReplyFIFO: a FIFO request whose reply FIFO is not in imcd's reply
// directory. It was not run; the error says which directory to use.
const CodeReplyFIFO = jsonrpc.CodeServerError - 2

// replyPlace is where a request's reply FIFO is.
type replyPlace int

const (
	replyNowhere  replyPlace = iota
	replyInDir               // in the reply directory: the request is run and answered
	replyInCLIDir            // only in CLIReplyDir: the client is told to use the reply directory
)

// locate finds the reply FIFO name: in the reply directory, else in
// CLIReplyDir. Whatever is at the name in the reply directory counts (fi
// says what it is); in CLIReplyDir, writeOutside checks it.
func (t *FIFOTransport) locate(name string) (replyPlace, fs.FileInfo) {
	if fi, err := os.Lstat(filepath.Join(t.replyDir(), name)); !errors.Is(err, fs.ErrNotExist) {
		return replyInDir, fi
	}
	if _, err := os.Lstat(filepath.Join(CLIReplyDir, name)); !errors.Is(err, fs.ErrNotExist) {
		return replyInCLIDir, nil
	}
	return replyNowhere, nil
}

// answer runs a request and writes its reply when its reply FIFO is a FIFO
// in the reply directory; else the request is not run, since its reply
// could not be delivered. A reply FIFO in CLIReplyDir gets CodeReplyFIFO
// instead (req gives the error its id).
func (t *FIFOTransport) answer(name, req []byte, run func() []byte, log *slog.Logger) {
	if !t.validName(name, log) {
		return
	}
	place, fi := t.locate(string(name))
	path := filepath.Join(t.replyDir(), string(name))
	switch {
	case place == replyInDir && fi != nil && fi.Mode()&fs.ModeNamedPipe != 0:
		t.reply(name, run(), log)
	case place == replyInDir:
		what := "unreadable"
		if fi != nil {
			what = fileKind(fi.Mode())
		}
		log.Warn("MI FIFO request not run: its reply FIFO is not a FIFO", logkey.ReplyFIFO, path, logkey.Err,
			fmt.Errorf("%w: a %s", ErrNotFIFO, what))
	case place == replyInCLIDir:
		t.redirect(string(name), req, log)
	default:
		log.Warn("MI FIFO request not run: its reply FIFO does not exist (a client creates it before writing the request)",
			logkey.ReplyFIFO, path)
	}
}

// redirect tells the client whose reply FIFO is in CLIReplyDir to use the
// reply directory, with the request's id.
func (t *FIFOTransport) redirect(name string, req []byte, log *slog.Logger) {
	path := filepath.Join(CLIReplyDir, name)
	dir := t.replyDir()
	body := jsonrpc.AppendError(nil, t.requestID(req), &jsonrpc.Error{Code: CodeReplyFIFO,
		Message: "reply FIFO outside imcd's reply directory: request not run",
		Data: fmt.Sprintf("imcd answers only through reply FIFOs in %s, not %s; with opensips-cli add -o fifo_reply_dir=%s",
			dir, CLIReplyDir, dir)})
	if err := t.writeOutside(path, body); err != nil {
		log.Warn("MI FIFO request not run: its reply FIFO is outside the reply directory, and its client could not be told",
			logkey.ReplyFIFO, path, logkey.Err, err)
		return
	}
	log.Warn("MI FIFO request not run: its reply FIFO is outside the reply directory; its client was told to use it (opensips-cli: -o fifo_reply_dir)",
		logkey.ReplyFIFO, path)
}

// requestID is the id of req, encoded, or null when it has none (or is not
// JSON-RPC).
func (t *FIFOTransport) requestID(req []byte) []byte {
	if req == nil {
		return nullID()
	}
	p := t.Server.parsers.Get()
	defer t.Server.parsers.Put(p)
	m, _ := jsonrpc.Decode(p, req)
	if m.ID == nil {
		return nullID()
	}
	return jsonrpc.AppendID(nil, m.ID)
}

// writeOutside writes body into the FIFO at path, in a directory anyone may
// write (CLIReplyDir), so that only what imcd means to write is written
// where it means to: the path must be a FIFO (not a symbolic link, not a
// file or a device), whose owner could have sent the request (mayUseMI);
// it is opened without following a link, without blocking and without
// becoming a controlling terminal, and what was opened must be what was
// checked.
func (t *FIFOTransport) writeOutside(path string, body []byte) error {
	before, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if err := t.checkOutside(path, before); err != nil {
		return err
	}
	return writeReplyFIFO(path, body, func(after fs.FileInfo) error {
		if !os.SameFile(before, after) {
			return fmt.Errorf("%w: %s was replaced while it was opened", ErrNotFIFO, path)
		}
		return t.checkOutside(path, after)
	})
}

// checkOutside accepts a FIFO whose owner may use imcd's MI.
func (t *FIFOTransport) checkOutside(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		return fmt.Errorf("%w: %s is a %s", ErrNotFIFO, path, fileKind(fi.Mode()))
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !t.mayUseMI(st.Uid) {
		return fmt.Errorf("%w: %s", ErrReplyFIFOOwner, path)
	}
	return nil
}

// mayUseMI reports whether uid could have written imcd's command FIFO as
// it is now: root, imcd's own user, a member of its group when its mode
// lets the group write, anyone when it lets everyone.
func (t *FIFOTransport) mayUseMI(uid uint32) bool {
	if uid == 0 || int(uid) == os.Geteuid() {
		return true
	}
	fi, err := t.f.Stat()
	if err != nil {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o002 != 0:
		return true
	case perm&0o020 == 0:
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return false
	}
	groups, err := u.GroupIds()
	return err == nil && slices.Contains(groups, strconv.FormatUint(uint64(st.Gid), 10))
}
