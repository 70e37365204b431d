package opensipstest

import (
	"errors"
	"net/netip"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// parseErrorReply is what mi_datagram sends for malformed JSON: plain text.
const parseErrorReply = "400 Parse_error"

// request is one MI request being served.
type request struct {
	gen    int
	from   netip.AddrPort
	method string
	id     []byte // raw JSON id; nil for a notification (no reply)
	params *fastjson.Value
	raw    []byte
}

// serveRequest serves one request taken from the receive buffer.
func (s *Server) serveRequest(p, q *fastjson.Parser, it miItem) {
	gen, from, raw := it.gen, it.from, it.raw
	call := Call{Raw: raw, From: from.String(), Received: it.received, Served: time.Now()}
	if reply, silent := s.replayed(raw); silent || reply != nil {
		call.Method, _ = OpenSIPSMethod(raw)
		s.rec.addCall(call)
		if !silent {
			s.sendMI(gen, from, reply)
		}
		return
	}
	v, err := p.ParseBytes(raw)
	if err != nil {
		s.rec.addCall(call)
		s.sendMI(gen, from, []byte(parseErrorReply))
		return
	}
	method, ok := openSIPSString(v, methodKey)
	if v.Type() == fastjson.TypeArray || v.Type() == fastjson.TypeObject && !ok {
		// The real mi_datagram segfaults here (datagram_fnc.c:529).
		call.Crash = true
		s.rec.addCall(call)
		s.log.Warn("request would crash OpenSIPS's mi_datagram", logkey.Request, string(raw))
		return
	}
	m, err := jsonrpc.Decode(q, raw)
	var id []byte
	if m.ID != nil {
		id = jsonrpc.AppendID(nil, m.ID)
		call.ID = string(id)
	}
	call.Method = method // what OpenSIPS runs, whatever Decode makes of it
	s.rec.addCall(call)
	r := &request{gen: gen, from: from, method: string(m.Method), id: id, params: m.Params, raw: raw}
	if err != nil {
		var je *jsonrpc.Error
		if !errors.As(err, &je) {
			je = jsonrpc.ErrInvalidRequest
		}
		s.replyError(r, je)
		return
	}
	s.mu.Lock()
	h := s.handlers[r.method]
	s.mu.Unlock()
	if h != nil {
		var params []byte
		if r.params != nil {
			params = r.params.MarshalTo(nil)
		}
		res, je := h(params)
		if je != nil {
			s.replyError(r, je)
		} else {
			s.replyResult(r, res)
		}
		return
	}
	switch r.method {
	case "t_uac_dlg", "tm:uac_dlg":
		s.uacDlg(r)
	case "event_subscribe", "evi:subscribe":
		s.eventSubscribe(r)
	case "subscribers_list", "evi:subscribers":
		s.subscribersList(r)
	case "events_list", "evi:list":
		s.eventsList(r)
	case "which", "core:which":
		s.which(r)
	case "ul_show_contact", "usrloc:show_contact":
		s.ulShowContact(r)
	case "ul_dump", "usrloc:dump":
		s.ulDump(r)
	case "get_statistics", "statistics:get":
		s.getStatistics(r)
	default:
		s.replyError(r, jsonrpc.ErrMethodNotFound)
	}
}

// replyResult answers r with {"jsonrpc":"2.0","result":…,"id":…}; a
// notification gets nothing.
func (s *Server) replyResult(r *request, result []byte) {
	if r.id == nil {
		return
	}
	s.sendMI(r.gen, r.from, jsonrpc.AppendResult(nil, r.id, result))
}

// replyError answers r with an error object; a notification gets nothing.
func (s *Server) replyError(r *request, e *jsonrpc.Error) {
	if r.id == nil {
		return
	}
	id := r.id
	s.sendMI(r.gen, r.from, jsonrpc.AppendError(nil, id, e))
}

// miError returns an OpenSIPS MI error without data.
func miError(code int, msg string) *jsonrpc.Error { return &jsonrpc.Error{Code: code, Message: msg} }
