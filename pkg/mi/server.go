package mi

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Defaults of the Server's limits.
const (
	// DefaultMaxRequest is the largest request accepted, in bytes: the
	// largest datagram opensips-cli's default buffer takes.
	DefaultMaxRequest = 65535
	// DefaultTimeout bounds one request, pass-through included.
	DefaultTimeout = 10 * time.Second
)

// Forwarder passes a request to OpenSIPS's MI as it is given (the Server
// gives it the request it rebuilt) and returns OpenSIPS's raw reply: nil reply and nil error for a notification. req is only valid
// during the call. pkg/opensips's MIClient implements it.
type Forwarder interface {
	Forward(ctx context.Context, req []byte) ([]byte, error)
}

// Server answers MI requests: the Registry's commands, which and core:which
// (merged with what OpenSIPS lists and the Server would forward), and,
// through Forward, the other commands the pass-through policy lets through
// (DefaultPassthrough and PassthroughAllow, or all with PassthroughAll);
// others get CodeNotForwarded. Without Forward an unknown method gets
// -32601.
// A request imcd cannot decode, a batch array, or one without a method is
// answered with a JSON-RPC error and never forwarded: any of them crashes
// OpenSIPS's mi_datagram. Nor is one that OpenSIPS would read otherwise
// than imcd (jsonrpc.Decode, jsonrpc.CheckKeys: a member twice or in
// another case, here and in which's params): -32600, whatever the
// transport. What is forwarded is rebuilt from what imcd parsed (method,
// params, id), never the bytes that came in.
//
// Set the fields before the first Handle and do not change them after.
type Server struct {
	// Registry holds imcd's own commands; nil means none.
	Registry *Registry
	// Forward, when set, receives the commands imcd does not own that the
	// pass-through policy lets through.
	Forward Forwarder
	// PassthroughAll forwards every command imcd does not own
	// (mi_passthrough = all) instead of DefaultPassthrough's.
	PassthroughAll bool
	// PassthroughAllow names commands forwarded besides DefaultPassthrough's
	// (mi_passthrough_allow).
	PassthroughAllow []string
	// Logger receives the server's records (the daemon passes one with
	// system=mi); nil discards them.
	Logger *slog.Logger
	// MaxRequest is the largest request accepted, in bytes
	// (DefaultMaxRequest when 0); larger ones get -32600.
	MaxRequest int
	// Timeout bounds each request (DefaultTimeout when 0).
	Timeout time.Duration

	parsers fastjson.ParserPool
	which   whichCache
	panics  atomic.Uint64

	allowOnce sync.Once
	allowed   map[string]bool

	logOnce sync.Once
	log     *slog.Logger
}

// envelope is what AppendResult adds around a result and an id.
const envelope = `{"jsonrpc":"2.0","result":,"id":}`

// Handle processes one raw request and returns the raw reply, or nil for a
// notification (a request without an id). It is safe for concurrent use. A
// panic in a command is recovered, logged and answered with -32603.
func (s *Server) Handle(ctx context.Context, req []byte) []byte {
	return s.handle(ctx, req, 0)
}

// Panics returns how many requests panicked since the server started.
func (s *Server) Panics() uint64 { return s.panics.Load() }

// handle is Handle with a cap on the reply size (0: none). A reply over the
// cap is replaced by a CodeReplyTooLarge error with the request's id.
func (s *Server) handle(ctx context.Context, req []byte, maxReply int) (reply []byte) {
	id := nullID()
	notification := false
	method := ""
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.panics.Add(1)
			s.logger().Error("MI request panicked", logkey.Method, method, logkey.Panic, p, logkey.Stack, string(debug.Stack()))
			reply = nil
			if !notification {
				reply = jsonrpc.AppendError(nil, id, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "Internal error"})
			}
		}
	}()
	if len(req) > s.maxRequest() {
		return jsonrpc.AppendError(nil, id, errTooLarge(s.maxRequest()))
	}
	p := s.parsers.Get()
	defer s.parsers.Put(p)
	m, err := jsonrpc.Decode(p, req)
	if m.ID != nil {
		id = jsonrpc.AppendID(nil, m.ID)
	}
	if err != nil {
		return jsonrpc.AppendError(nil, id, rpcError(err))
	}
	if !m.IsRequest() {
		// A response (result or error) sent to us: not a request.
		return jsonrpc.AppendError(nil, id, jsonrpc.ErrInvalidRequest)
	}
	method = string(m.Method)
	notification = m.IsNotification()
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()

	result, forwarded, err := s.dispatch(ctx, method, &m)
	switch {
	case forwarded:
		reply = result
	case notification:
		reply = nil
	case err != nil:
		je := rpcError(err)
		reply = jsonrpc.AppendError(nil, id, je)
		s.logger().Debug("MI command failed", logkey.Method, method, logkey.Code, je.Code, logkey.Err, je.Message)
	default:
		reply = jsonrpc.AppendResult(make([]byte, 0, len(envelope)+len(result)+len(id)), id, result)
	}
	if maxReply > 0 && len(reply) > maxReply {
		reply = jsonrpc.AppendError(nil, id, &jsonrpc.Error{Code: CodeReplyTooLarge, Message: "Reply too large",
			Data: strconv.Itoa(len(reply)) + " bytes do not fit in one datagram; use the HTTP or FIFO transport"})
	}
	s.logger().Debug("MI request", logkey.Method, method, logkey.Duration, time.Since(start), logkey.Size, len(reply))
	return reply
}

// dispatch runs method: which, a registered command, or a pass-through. A
// forwarded reply is returned verbatim with forwarded set.
func (s *Server) dispatch(ctx context.Context, method string, m *jsonrpc.Message) (result []byte, forwarded bool, err error) {
	if isWhich(method) {
		return s.whichCmd(ctx, m)
	}
	if cmd, ok := s.Registry.Lookup(method); ok {
		if _, jerr := matchParams(cmd.Params, m.Params); jerr != nil {
			return nil, false, jerr
		}
		result, err = cmd.Handler(ctx, m.Params)
		return result, false, err
	}
	if s.forwards(method) {
		var params []byte
		if m.Params != nil {
			if params, err = jsonrpc.AppendValue(nil, m.Params); err != nil {
				return nil, false, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: jsonrpc.ErrInvalidRequest.Message,
					Data: "params: " + err.Error()}
			}
		}
		return s.forward(ctx, method, params, m), true, nil
	}
	if s.Forward != nil {
		s.logger().Info("MI command not forwarded to OpenSIPS (mi_passthrough)", logkey.Method, method)
		return nil, false, errNotForwarded(method)
	}
	return nil, false, jsonrpc.ErrMethodNotFound
}

// forward passes method with params (encoded, nil for none) and m's id to
// OpenSIPS and returns its reply verbatim, or a CodeNoAnswer error when it
// does not answer. The request is rebuilt from what imcd parsed and
// checked, never copied from what came in: OpenSIPS reads JSON otherwise
// than imcd (keys in any case, the first of two), so the bytes a client
// sent could name another command than the one the policy let through.
func (s *Server) forward(ctx context.Context, method string, params []byte, m *jsonrpc.Message) []byte {
	var id []byte
	if !m.IsNotification() {
		id = jsonrpc.AppendID(nil, m.ID)
	}
	reply, err := s.Forward.Forward(ctx, jsonrpc.AppendRequest(nil, method, params, id))
	if err == nil && (reply != nil || m.IsNotification()) {
		return reply
	}
	if err == nil {
		err = errors.New("empty reply")
	}
	s.logger().Warn("OpenSIPS MI did not answer a passed-through command", logkey.Method, method, logkey.Err, err)
	if m.IsNotification() {
		return nil
	}
	return jsonrpc.AppendError(nil, id, &jsonrpc.Error{
		Code: CodeNoAnswer, Message: "OpenSIPS did not answer", Data: err.Error()})
}

// nullID is the id of a reply to a request whose id is unknown.
func nullID() []byte { return jsonrpc.AppendID(nil, nil) }

func errTooLarge(max int) *jsonrpc.Error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "Invalid Request",
		Data: "request larger than " + strconv.Itoa(max) + " bytes"}
}

func (s *Server) maxRequest() int {
	if s.MaxRequest > 0 {
		return s.MaxRequest
	}
	return DefaultMaxRequest
}

func (s *Server) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Server) logger() *slog.Logger {
	s.logOnce.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = discardLogger()
		}
	})
	return s.log
}
