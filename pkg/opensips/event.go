package opensips

import (
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// DefaultEventName is the event the shipped OpenSIPS script raises.
const DefaultEventName = "E_IMC_MESSAGE"

// Event is one decoded E_IMC_MESSAGE: the MESSAGE as the OpenSIPS script
// reported it (see scripts/opensips/ and docs/opensips.md for each param).
type Event struct {
	// Transport is TransportStream, TransportDatagram or, for a brokered
	// event, the broker's name ("rabbitmq").
	Transport string
	// Req holds from, ruri (to when ruri is absent), to, body, ctype and
	// callid. Its strings are copies: they do not point into a parser.
	Req imc.Request
	// FromTag, CSeq, SrcIP and Proto are the from_tag, cseq, src_ip and proto
	// params ("" when absent); CSeq is kept as text whether it came as a JSON
	// string or number.
	FromTag, CSeq, SrcIP, Proto string
	// SrcPort is src_port, 0 when absent.
	SrcPort int
	// Origin says which broker queue and consumer session delivered the
	// event; zero for event_stream and event_datagram.
	Origin Origin
}

// Origin is where a brokered event came from (filled by pkg/rabbitmq). An
// instance that starts consuming a queue may be handed rooms that another
// instance changed meanwhile, so a room's cached state is trusted only for
// events of the (Queue, Session) it was last read under: the daemon re-reads
// a room from the database when an event for it arrives under another
// Queue or Session than before, or Redelivered.
type Origin struct {
	// Queue is the queue the event was consumed from.
	Queue string
	// Session changes (never 0) each time this process starts consuming
	// Queue: at start, after a reconnect, after a rewind.
	Session uint64
	// Redelivered is the broker's flag: this or another consumer may have
	// applied the event before (the applied-once check decides).
	Redelivered bool
}

// Event params, by the names the shipped script gives them.
const (
	paramFrom    = "from"
	paramFromTag = "from_tag"
	paramTo      = "to"
	paramRURI    = "ruri"
	paramCallID  = "callid"
	paramCSeq    = "cseq"
	paramSrcIP   = "src_ip"
	paramSrcPort = "src_port"
	paramProto   = "proto"
	paramCType   = "ctype"
	paramBody    = "body"
)

// Indexes of the string params in eventFields.
const (
	fFrom = iota
	fFromTag
	fTo
	fRURI
	fCallID
	fCSeq
	fSrcIP
	fProto
	fCType
	fBody
	fSrcPort
	nFields
)

// eventFields collects the raw param bytes of one event while its params
// object is visited; the bytes point into the parser.
type eventFields struct {
	val     [nFields][]byte
	seen    [nFields]bool
	port    int
	cseqNum uint64 // cseq given as a JSON number
	cseqIsN bool
	err     error
}

func fieldIndex(key []byte) int {
	switch string(key) {
	case paramFrom:
		return fFrom
	case paramFromTag:
		return fFromTag
	case paramTo:
		return fTo
	case paramRURI:
		return fRURI
	case paramCallID:
		return fCallID
	case paramCSeq:
		return fCSeq
	case paramSrcIP:
		return fSrcIP
	case paramSrcPort:
		return fSrcPort
	case paramProto:
		return fProto
	case paramCType:
		return fCType
	case paramBody:
		return fBody
	}
	return -1
}

func (f *eventFields) visit(key []byte, v *fastjson.Value) {
	if f.err != nil {
		return
	}
	if len(key) == 0 {
		// MI raise_event with array params names every param "".
		f.err = &ParamError{Param: "", Reason: "empty param name"}
		return
	}
	i := fieldIndex(key)
	if i < 0 {
		return // unknown params (opensips_event, ...) are ignored
	}
	if f.seen[i] {
		f.err = &ParamError{Param: string(key), Reason: "given twice"}
		return
	}
	f.seen[i] = true
	switch t := v.Type(); {
	case t == fastjson.TypeString:
		b, _ := v.StringBytes()
		f.val[i] = b
		if i == fSrcPort {
			p, ok := parsePort(b)
			if !ok {
				f.err = &ParamError{Param: string(key), Reason: "not a port number"}
			}
			f.port = p
		}
	case t == fastjson.TypeNumber && i == fSrcPort:
		p, err := v.Int()
		if err != nil || p < 0 || p > 65535 {
			f.err = &ParamError{Param: string(key), Reason: "not a port number"}
		}
		f.port = p
	case t == fastjson.TypeNumber && i == fCSeq:
		n, err := v.Uint64()
		if err != nil {
			f.err = &ParamError{Param: string(key), Reason: "not an unsigned integer"}
		}
		f.cseqNum, f.cseqIsN = n, true
	case i == fSrcPort || i == fCSeq:
		f.err = &ParamError{Param: string(key), Reason: "not a string or number (" + t.String() + ")"}
	default:
		f.err = &ParamError{Param: string(key), Reason: "not a string (" + t.String() + ")"}
	}
}

// DecodeEvent checks the params of one E_IMC_MESSAGE notification and fills
// ev (all but ev.Transport). from, ruri and body are required (ruri may be
// replaced by to; body may be ""); the other params are optional. A param of
// the wrong JSON type, a param given twice or an empty param name (what MI
// raise_event with array params produces) is an error naming the param; it
// wraps ErrBadEvent. Unknown params are ignored.
//
// The strings put in ev are copies and outlive the parser.
func DecodeEvent(params *fastjson.Value, ev *Event) error {
	if params == nil {
		return &ParamError{Param: "params", Reason: "missing"}
	}
	o, err := params.Object()
	if err != nil {
		return &ParamError{Param: "params", Reason: "not an object"}
	}
	var f eventFields
	o.Visit(f.visit)
	if f.err != nil {
		return f.err
	}
	if !f.seen[fRURI] && f.seen[fTo] {
		f.val[fRURI], f.seen[fRURI] = f.val[fTo], true
	}
	switch {
	case len(f.val[fFrom]) == 0:
		return &ParamError{Param: paramFrom, Reason: "missing or empty"}
	case len(f.val[fRURI]) == 0:
		return &ParamError{Param: paramRURI, Reason: "missing or empty (and no to)"}
	case !f.seen[fBody]:
		return &ParamError{Param: paramBody, Reason: "missing"}
	}

	// One allocation for the short fields, one for the body: a body is
	// often large and short-lived, the addresses may be kept by the engine.
	n := 0
	for i := range fBody {
		n += len(f.val[i])
	}
	if f.cseqIsN {
		n += 20
	}
	var sb strings.Builder
	sb.Grow(n)
	var off [fBody + 1]int
	for i := range fBody {
		if i == fCSeq && f.cseqIsN {
			var nb [20]byte
			sb.Write(strconv.AppendUint(nb[:0], f.cseqNum, 10))
		} else {
			sb.Write(f.val[i])
		}
		off[i+1] = sb.Len()
	}
	all := sb.String()
	field := func(i int) string { return all[off[i]:off[i+1]] }

	*ev = Event{
		Transport: ev.Transport,
		Req: imc.Request{
			From:        field(fFrom),
			RURI:        field(fRURI),
			To:          field(fTo),
			Body:        string(f.val[fBody]),
			ContentType: field(fCType),
			CallID:      field(fCallID),
		},
		FromTag: field(fFromTag),
		CSeq:    field(fCSeq),
		SrcIP:   field(fSrcIP),
		Proto:   field(fProto),
		SrcPort: f.port,
	}
	return nil
}

// paramCallIDOf returns the callid param of a params object for logging a
// refused event, "" when there is none.
func paramCallIDOf(params *fastjson.Value) string {
	if params == nil {
		return ""
	}
	b := params.GetStringBytes(paramCallID)
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}

func parsePort(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 5 || !isDigits(b) {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n > 65535 {
		return 0, false
	}
	return n, true
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
