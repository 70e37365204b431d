package opensipstest

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// rule says how the fake ends a delivery to one URI.
type rule struct {
	status   string         // final status line; "" = default
	noAnswer bool           // 408 after FrTimeout, no Message
	err      *jsonrpc.Error // synchronous refusal
	delay    time.Duration  // time to the final reply; < 0 = default
}

// SetStatus makes deliveries to uri end with status ("404 Not Found",
// "480 Temporarily Unavailable", ...). uri is matched on user@host,
// case-insensitively, ignoring scheme, port and params.
//
// A rule (SetStatus, SetNoAnswer, SetDelay) describes the UA behind the
// AOR, so with Options.RequireRegistration it only comes into play while
// the AOR has a live contact: set before the registration it waits for it,
// and it outlives an unregistration (the AOR gets the proxy's 404 at once
// meanwhile, never a 408 or a delay). SetError is tm's own synchronous
// refusal and applies whether the AOR is registered or not.
func (s *Server) SetStatus(uri, status string) {
	s.updateRule(uri, func(r *rule) { *r = rule{status: status, delay: r.delay} })
}

// SetNoAnswer makes deliveries to uri go unanswered by the far end: the
// reply is "408 Request Timeout" without Message, after FrTimeout.
func (s *Server) SetNoAnswer(uri string) {
	s.updateRule(uri, func(r *rule) { *r = rule{noAnswer: true, delay: r.delay} })
}

// SetError makes t_uac_dlg requests to uri fail at once with a JSON-RPC
// error, as OpenSIPS does for an unresolvable destination (476, "Unresolvable
// destination (476/MI/UAC)").
func (s *Server) SetError(uri string, code int, msg string) {
	s.updateRule(uri, func(r *rule) { *r = rule{err: miError(code, msg), delay: r.delay} })
}

// SetDelay makes the final reply for uri come after d (the status is kept).
func (s *Server) SetDelay(uri string, d time.Duration) {
	s.updateRule(uri, func(r *rule) { r.delay = d })
}

// ClearRules forgets every per-URI rule.
func (s *Server) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = make(map[string]rule)
}

func (s *Server) updateRule(uri string, f func(*rule)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := uriKey(uri)
	r, ok := s.rules[k]
	if !ok {
		r.delay = -1
	}
	f(&r)
	s.rules[k] = r
}

// uriKey reduces a SIP URI to lower-case user@host.
func uriKey(uri string) string {
	u, ok := parseSIPURI(uri)
	if !ok {
		return strings.ToLower(uri)
	}
	return strings.ToLower(u.user + "@" + u.host)
}

type sipURI struct{ user, host, port string }

// parseSIPURI parses sip:[user@]host[:port][;params][?headers], enough for
// the checks OpenSIPS makes on ruri and next_hop.
func parseSIPURI(s string) (sipURI, bool) {
	var u sipURI
	low := strings.ToLower(s)
	switch {
	case strings.HasPrefix(low, "sip:"):
		s = s[4:]
	case strings.HasPrefix(low, "sips:"):
		s = s[5:]
	default:
		return u, false
	}
	if i := strings.IndexAny(s, ";?"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		u.user, s = s[:i], s[i+1:]
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return u, false
		}
		host, port = s[:end+1], strings.TrimPrefix(s[end+1:], ":")
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n<>\"") {
		return u, false
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return u, false
		}
	}
	u.host, u.port = host, port
	return u, true
}

// uacParams are t_uac_dlg's named params.
var uacParams = map[string]bool{"method": true, "ruri": true, "headers": true, "next_hop": true, "socket": true, "body": true}

// uacDlg serves t_uac_dlg as OpenSIPS's tm does: synchronous validation
// errors, then one asynchronous reply with the final status.
func (s *Server) uacDlg(r *request) {
	if r.params == nil || r.params.Type() == fastjson.TypeArray {
		s.replyError(r, jsonrpc.InvalidParams("Command only supports named parameters"))
		return
	}
	o, _ := r.params.Object()
	vals := map[string]string{}
	match := true
	o.Visit(func(k []byte, v *fastjson.Value) {
		b, err := v.StringBytes()
		if !uacParams[string(k)] || err != nil {
			match = false
			return
		}
		vals[string(k)] = string(b)
	})
	_, hasMethod := vals["method"]
	_, hasRURI := vals["ruri"]
	hdrs, hasHeaders := vals["headers"]
	if !match || !hasMethod || !hasRURI || !hasHeaders {
		s.replyError(r, jsonrpc.InvalidParams("Named parameters do not match"))
		return
	}
	ruri, ok := parseSIPURI(vals["ruri"])
	if !ok {
		s.replyError(r, miError(400, "Invalid ruri"))
		return
	}
	nextHop, hasNextHop := vals["next_hop"]
	if hasNextHop {
		if _, ok := parseSIPURI(nextHop); !ok {
			s.replyError(r, miError(400, "Invalid next_hop"))
			return
		}
	}
	body, hasBody := vals["body"]
	d := Delivery{
		MIMethod: r.method,
		ID:       string(r.id),
		Method:   vals["method"],
		RURI:     vals["ruri"],
		NextHop:  nextHop,
		Socket:   vals["socket"],
		Body:     body,
		HasBody:  hasBody,
		Received: time.Now(),
		Raw:      r.raw,
	}
	// OpenSIPS accepts the two-character sequence \r\n for CRLF.
	d.Headers = strings.ReplaceAll(hdrs, `\r\n`, "\r\n")
	fields, ok := parseHeaders(d.Headers)
	if !ok {
		s.replyError(r, miError(400, "Bad headers"))
		return
	}
	d.Fields = fields
	from, hasFrom := d.Header("From")
	to, hasTo := d.Header("To")
	if !hasFrom {
		s.replyError(r, miError(400, "From missing"))
		return
	}
	if !hasTo {
		s.replyError(r, miError(400, "To missing"))
		return
	}
	if cseq, ok := d.Header("CSeq"); ok {
		if f := strings.Fields(cseq); len(f) != 2 || !strings.EqualFold(f[1], d.Method) {
			s.replyError(r, miError(400, "CSeq method mismatch"))
			return
		}
	}
	ctype, hasCType := d.Header("Content-Type")
	if body != "" && !hasCType {
		s.replyError(r, miError(400, "Content-Type missing"))
		return
	}
	if _, ok := d.Header("Content-Length"); ok {
		s.replyError(r, miError(400, "Content-Length disallowed"))
		return
	}
	if !hasNextHop && strings.HasSuffix(strings.ToLower(ruri.host), ".invalid") {
		s.replyError(r, miError(476, "Unresolvable destination (476/MI/UAC)"))
		return
	}
	d.From, d.FromTag = nameAddr(from)
	d.To, _ = nameAddr(to)
	d.ContentType = ctype
	d.InReplyTo, _ = d.Header("In-Reply-To")
	if s.throughScript(r, &d, ruri) {
		return
	}

	s.mu.Lock()
	rl, hasRule := s.rules[uriKey(d.RURI)]
	s.txSeq++
	seq := s.txSeq
	s.mu.Unlock()
	if hasRule && rl.err != nil {
		s.replyError(r, rl.err)
		return
	}
	txGen, ok := s.tx.begin(s.txLimit)
	if !ok {
		s.replyError(r, miError(RefusedCode, RefusedMessage))
		return
	}

	status, delay := s.opts.DefaultStatus, s.opts.ReplyDelay
	var result []byte
	switch {
	case s.opts.RequireRegistration && !s.ul.registered(ruri.user, ruri.host, time.Now()):
		// The proxy's own lookup fails and it answers at once: the far
		// end, and so its rule, never comes into it.
		status, delay, d.Unregistered = "404 Not Found", 0, true
		result = appendStatusMessage(result, status, proxyNotFoundMessage(&d, seq))
	case hasRule && rl.noAnswer:
		status, delay = "408 Request Timeout", s.opts.FrTimeout
		result = []byte(`{"Status":"408 Request Timeout"}`)
	default:
		if hasRule && rl.status != "" {
			status = rl.status
		}
		if hasRule && rl.delay >= 0 {
			delay = rl.delay
		}
		result = appendStatusMessage(result, status, replyMessage(&d, seq))
	}
	d.Status = status
	s.rec.addDelivery(d)
	tx := &transaction{at: time.Now().Add(delay), gen: txGen, miGen: r.gen, to: r.from}
	if r.id != nil { // a notification is executed but gets no reply
		tx.reply = jsonrpc.AppendResult(nil, r.id, result)
	}
	s.tx.schedule(tx)
}

// parseHeaders splits a CRLF-separated header block; every line must be
// "Name: value" and the block must end with CRLF.
func parseHeaders(h string) ([]HeaderField, bool) {
	if h == "" {
		return nil, true
	}
	if !strings.HasSuffix(h, "\r\n") {
		return nil, false
	}
	var out []HeaderField
	for line := range strings.SplitSeq(strings.TrimSuffix(h, "\r\n"), "\r\n") {
		i := strings.IndexByte(line, ':')
		if i <= 0 {
			return nil, false
		}
		name := strings.TrimSpace(line[:i])
		if name == "" || strings.ContainsAny(name, " \t\r\n") {
			return nil, false
		}
		out = append(out, HeaderField{Name: name, Value: strings.TrimSpace(line[i+1:])})
	}
	return out, true
}

// nameAddr returns the URI inside < > of a From/To value (or the value up to
// its params) and its tag param.
func nameAddr(v string) (uri, tag string) {
	params := ""
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return v, ""
		}
		uri, params = v[i+1:i+j], v[i+j+1:]
	} else if i := strings.IndexByte(v, ';'); i >= 0 {
		uri, params = v[:i], v[i:]
	} else {
		uri = v
	}
	for p := range strings.SplitSeq(params, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "tag") {
			tag = val
		}
	}
	return uri, tag
}

// throughScript plays the fragment's route for a MESSAGE to a room (see
// Options.RoomPrefix): the request is answered 202 and raised as an event,
// as from a SIP UA; it reports whether it did.
func (s *Server) throughScript(r *request, d *Delivery, ruri sipURI) bool {
	if s.opts.NoScript || !strings.HasPrefix(ruri.user, s.opts.RoomPrefix) {
		return false
	}
	callID, ok := d.Header("Call-ID")
	if !ok {
		callID = strconv.FormatUint(rand.Uint64(), 16) + "@fake-tm"
	}
	ev := Event{From: d.From, FromTag: d.FromTag, To: d.To, RURI: d.RURI, CallID: callID, CSeq: "10",
		SrcIP: "127.0.0.1", SrcPort: 5060, Proto: "udp", CType: d.ContentType, Body: d.Body}
	s.rec.addLooped(*d)
	if r.id != nil {
		s.sendMI(r.gen, r.from, jsonrpc.AppendResult(nil, r.id, []byte(`{"Status":"202 Accepted"}`)))
	}
	go func() { _, _ = s.Raise(ev) }() // the script raises it once the request was taken
	return true
}
