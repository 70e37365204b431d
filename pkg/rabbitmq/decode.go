package rabbitmq

import (
	"fmt"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// Transport is the value of opensips.Event.Transport for events consumed
// from RabbitMQ.
const Transport = "rabbitmq"

// DefaultMaxBody caps one message body, as max_frame caps an event_stream
// object.
const DefaultMaxBody = opensips.DefaultMaxFrame

// Names of the AMQP headers of the raw-body form: the event params the
// OpenSIPS script passes to rabbitmq_publish as header names. The script in
// scripts/opensips/imcd-rabbitmq.cfg sends from, callid, cseq, ruri and
// ctype; the others are read when present.
const (
	hdrFrom    = "from"
	hdrFromTag = "from_tag"
	hdrTo      = "to"
	hdrRURI    = "ruri"
	hdrCallID  = "callid"
	hdrCSeq    = "cseq"
	hdrSrcIP   = "src_ip"
	hdrSrcPort = "src_port"
	hdrProto   = "proto"
	hdrCType   = "ctype"
)

// Decode turns one message into an event (all but ev.Transport and
// ev.Origin, which the Consumer fills). Two forms are understood, as the
// OpenSIPS script publishes them:
//
//   - headers carry "from": the raw-body form. The body is the MESSAGE body
//     byte for byte; from, ruri (or to), callid, cseq and ctype come from
//     string headers (int headers are accepted for cseq and src_port);
//   - otherwise the body is a JSON object of the E_IMC_MESSAGE params, as
//     the json module prints it, decoded by opensips.DecodeEvent.
//
// Errors wrap opensips.ErrBadEvent: such a message can never be applied.
// p is reused between calls (not safe for concurrent use); the strings put
// in ev are copies and outlive it.
func Decode(p *fastjson.Parser, headers amqp.Table, body []byte, ev *opensips.Event) error {
	if _, ok := headers[hdrFrom]; ok {
		return decodeHeaders(headers, body, ev)
	}
	v, err := p.ParseBytes(body)
	if err != nil {
		return fmt.Errorf("%w: body is not JSON: %w", opensips.ErrBadEvent, err)
	}
	return opensips.DecodeEvent(v, ev)
}

func decodeHeaders(h amqp.Table, body []byte, ev *opensips.Event) error {
	var err error
	text := func(name string) string {
		v, ok := h[name]
		if !ok || err != nil {
			return ""
		}
		switch t := v.(type) {
		case string:
			return t
		case []byte:
			return string(t)
		case int32:
			if name == hdrCSeq && t >= 0 {
				return strconv.FormatInt(int64(t), 10)
			}
		case int64:
			if name == hdrCSeq && t >= 0 {
				return strconv.FormatInt(t, 10)
			}
		}
		err = &opensips.ParamError{Param: name, Reason: fmt.Sprintf("header is not a string (%T)", v)}
		return ""
	}
	req := imc.Request{
		From:        text(hdrFrom),
		RURI:        text(hdrRURI),
		To:          text(hdrTo),
		Body:        string(body),
		ContentType: text(hdrCType),
		CallID:      text(hdrCallID),
	}
	e := opensips.Event{Req: req, FromTag: text(hdrFromTag), CSeq: text(hdrCSeq), SrcIP: text(hdrSrcIP), Proto: text(hdrProto)}
	if err != nil {
		return err
	}
	if e.SrcPort, err = headerPort(h[hdrSrcPort]); err != nil {
		return err
	}
	if e.Req.RURI == "" {
		e.Req.RURI = e.Req.To
	}
	switch {
	case e.Req.From == "":
		return &opensips.ParamError{Param: hdrFrom, Reason: "empty header"}
	case e.Req.RURI == "":
		return &opensips.ParamError{Param: hdrRURI, Reason: "missing or empty header (and no to)"}
	}
	*ev = e
	return nil
}

// headerPort reads src_port, which OpenSIPS sends as an int header when the
// script passes $sp; 0 when absent.
func headerPort(v any) (int, error) {
	var n int64
	switch t := v.(type) {
	case nil:
		return 0, nil
	case int32:
		n = int64(t)
	case int64:
		n = t
	case string:
		var err error
		if n, err = strconv.ParseInt(t, 10, 32); err != nil {
			n = -1
		}
	default:
		n = -1
	}
	if n < 0 || n > 65535 {
		return 0, &opensips.ParamError{Param: hdrSrcPort, Reason: "not a port number"}
	}
	return int(n), nil
}
