package mi

import (
	"errors"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// Errors of the registry and the transports. Wrapped errors carry the
// details; test with errors.Is.
var (
	// ErrBadCommand: a Command without a name or a handler.
	ErrBadCommand = errors.New("mi: command needs a name and a handler")
	// ErrDuplicateCommand: a name or alias is registered already.
	ErrDuplicateCommand = errors.New("mi: command name registered twice")
	// ErrReservedCommand: the name is one the Server answers itself
	// (which, core:which).
	ErrReservedCommand = errors.New("mi: command name reserved by the server")
	// ErrBadNetwork: a DatagramTransport network other than udp or unixgram.
	ErrBadNetwork = errors.New("mi: unsupported datagram network")
	// ErrNoPath: a FIFOTransport without a Path.
	ErrNoPath = errors.New("mi: FIFO path not set")
	// ErrNotFIFO: a path that must be a FIFO is something else (the command
	// FIFO at Listen, a reply FIFO when answering).
	ErrNotFIFO = errors.New("mi: not a FIFO")
	// ErrFIFOOwner: the FIFO at the command FIFO's path belongs to another
	// user, who could read the requests or answer in imcd's place.
	ErrFIFOOwner = errors.New("mi: FIFO owned by another user")
	// ErrReplyName: a FIFO request named a reply FIFO that is not a plain
	// file name inside the reply directory.
	ErrReplyName = errors.New("mi: reply FIFO name is not a plain file name")
	// ErrNoReader: nobody opened the reply FIFO for reading in time.
	ErrNoReader = errors.New("mi: reply FIFO has no reader")
)

// errWhichReply: OpenSIPS answered which with something else than a list.
var errWhichReply = errors.New("mi: OpenSIPS's which reply is not a list of names")

// JSON-RPC error codes imcd defines (the -32000..-32099 server range) and
// the generic code of a failed command.
const (
	// CodeNoAnswer: a passed-through command got no answer from OpenSIPS.
	CodeNoAnswer = jsonrpc.CodeServerError
	// CodeReplyTooLarge: the reply does not fit in one datagram.
	CodeReplyTooLarge = jsonrpc.CodeServerError - 1
	// CodeFailed is the code of a handler error that is not a
	// *jsonrpc.Error (a store failure, ...), like OpenSIPS's 500 replies.
	CodeFailed = 500
)

// The error objects of the imc commands, with the native module's texts
// where it has them.
func errEmptyParam(name string) *jsonrpc.Error {
	return &jsonrpc.Error{Code: 400, Message: "empty param", Data: name}
}

func errBadParam(name, why string) *jsonrpc.Error {
	return &jsonrpc.Error{Code: 400, Message: "bad param: " + name, Data: why}
}

// rpcError turns a handler's error into the JSON-RPC error sent back: a
// *jsonrpc.Error as is, anything else as 500 with its text.
func rpcError(err error) *jsonrpc.Error {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return je
	}
	return &jsonrpc.Error{Code: CodeFailed, Message: err.Error()}
}
