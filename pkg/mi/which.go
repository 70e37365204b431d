package mi

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// The names of which, answered by the Server itself.
const (
	whichName     = "which"
	coreWhichName = "core:which"
)

// How OpenSIPS's command list is fetched and kept.
const (
	// whichTTL is how long OpenSIPS's list is reused: opensips-cli sends
	// which before every command.
	whichTTL = 5 * time.Second
	// whichFailTTL is how long imcd lists only its own commands after
	// OpenSIPS did not answer, so that a down OpenSIPS does not make every
	// which wait for whichFetchTimeout.
	whichFailTTL = time.Second
	// whichFetchTimeout bounds the fetch: well under opensips-cli's 1 s
	// datagram timeout.
	whichFetchTimeout = 500 * time.Millisecond
)

func isWhich(name string) bool { return name == whichName || name == coreWhichName }

// whichParamSets are which's own param sets: none, or the command to describe.
func whichParamSets() [][]string { return [][]string{{}, {"command"}} }

// whichCache holds OpenSIPS's command list for whichTTL.
type whichCache struct {
	mu      sync.Mutex
	names   []string // never modified once stored: readers share it
	expires time.Time
	seq     uint64
}

// whichCmd answers which and core:which. Without params it lists every
// command imcd runs or forwards; with a command name it returns that
// command's param sets, or passes the request to OpenSIPS when the command
// is not imcd's and would be forwarded. Named params that OpenSIPS would
// read otherwise than imcd ("COMMAND" beside "command") are refused, as
// the envelope's are.
func (s *Server) whichCmd(ctx context.Context, m *jsonrpc.Message) (result []byte, forwarded bool, err error) {
	if m.Params != nil && m.Params.Type() == fastjson.TypeObject {
		o, _ := m.Params.Object()
		if je := jsonrpc.CheckKeys(o, whichParamSets()[1]...); je != nil {
			je.Data = "params: " + je.Data
			return nil, false, je
		}
	}
	args, err := StringParams(m.Params, whichParamSets())
	if err != nil {
		return nil, false, err
	}
	name, ok := args["command"]
	if !ok {
		return appendStrings(nil, s.commandNames(ctx)), false, nil
	}
	switch cmd, own := s.Registry.Lookup(name); {
	case own:
		return appendParamSets(nil, cmd.Params), false, nil
	case isWhich(name):
		return appendParamSets(nil, whichParamSets()), false, nil
	case s.forwards(name):
		params := append(jsonrpc.AppendString(append([]byte(nil), `{"command":`...), name), '}')
		return s.forward(ctx, string(m.Method), params, m), true, nil
	case s.Forward != nil:
		return nil, false, errNotForwarded(name)
	}
	return nil, false, &jsonrpc.Error{Code: 404, Message: "unknown MI command"}
}

// commandNames lists imcd's commands under every name, which and core:which,
// merged with OpenSIPS's list when pass-through is on: OpenSIPS's names that
// would be forwarded first, in its order, then imcd's that it lacks. A
// command the policy keeps from OpenSIPS is not listed, so opensips-cli
// does not offer it.
func (s *Server) commandNames(ctx context.Context) []string {
	own := append(s.Registry.Names(), coreWhichName, whichName)
	if s.Forward == nil {
		return own
	}
	remote := s.remoteNames(ctx)
	if len(remote) == 0 {
		return own
	}
	seen := make(map[string]bool, len(remote)+len(own))
	names := make([]string, 0, len(remote)+len(own))
	for i, list := range [][]string{remote, own} {
		for _, n := range list {
			if i == 0 && !s.forwards(n) && !isWhich(n) {
				continue
			}
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return names
}

// remoteNames returns OpenSIPS's command list, fetched at most once per
// whichTTL; nil while OpenSIPS does not answer.
func (s *Server) remoteNames(ctx context.Context) []string {
	c := &s.which
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Before(c.expires) {
		return c.names
	}
	c.seq++
	names, err := s.fetchWhich(ctx, c.seq)
	if err != nil {
		s.logger().Warn("OpenSIPS MI did not list its commands; which lists only imcd's", logkey.Err, err)
		c.names, c.expires = nil, now.Add(whichFailTTL)
		return nil
	}
	c.names, c.expires = names, now.Add(whichTTL)
	return names
}

// fetchWhich asks OpenSIPS for its command list.
func (s *Server) fetchWhich(ctx context.Context, seq uint64) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, whichFetchTimeout)
	defer cancel()
	req := jsonrpc.AppendRequest(nil, whichName, nil, jsonrpc.AppendString(nil, "imcd-which-"+strconv.FormatUint(seq, 10)))
	reply, err := s.Forward.Forward(ctx, req)
	if err != nil {
		return nil, err
	}
	p := s.parsers.Get()
	defer s.parsers.Put(p)
	m, err := jsonrpc.Decode(p, reply)
	if err != nil {
		return nil, err
	}
	if m.Error != nil {
		je, err := jsonrpc.DecodeError(m.Error)
		if err != nil {
			return nil, err
		}
		return nil, je
	}
	if m.Result == nil {
		return nil, errWhichReply
	}
	list, err := m.Result.Array()
	if err != nil {
		return nil, errWhichReply
	}
	names := make([]string, 0, len(list))
	for _, v := range list {
		if b, err := v.StringBytes(); err == nil {
			names = append(names, string(b))
		}
	}
	return names, nil
}

// appendStrings appends names as a JSON array of strings.
func appendStrings(dst []byte, names []string) []byte {
	dst = append(dst, '[')
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonrpc.AppendString(dst, n)
	}
	return append(dst, ']')
}

// appendParamSets appends a command's param sets as which returns them:
// [["room"]], or [[]] for a command without params.
func appendParamSets(dst []byte, sets [][]string) []byte {
	if len(sets) == 0 {
		return append(dst, "[[]]"...)
	}
	dst = append(dst, '[')
	for i, set := range sets {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendStrings(dst, set)
	}
	return append(dst, ']')
}
