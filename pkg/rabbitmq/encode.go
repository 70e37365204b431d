package rabbitmq

import (
	"strconv"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// ContentTypeJSON is the content type the OpenSIPS script publishes the
// JSON form with.
const ContentTypeJSON = "application/json"

// AppendJSON appends ev as the OpenSIPS script of
// scripts/opensips/imcd-rabbitmq.cfg publishes it (the JSON form): the 11
// params in the script's order, printed the way OpenSIPS's json module
// prints them ({ "from": "…", … } on one line, "/" escaped as "\/",
// control bytes as \u00XX, other bytes raw, src_port a number), byte for
// byte as in testdata/opensips-wire/rabbitmq. Decode reads it back. It is
// for whoever must publish as OpenSIPS does: tests, benchmarks, tools.
func AppendJSON(dst []byte, ev *opensips.Event) []byte {
	field := func(name, v string, first bool) {
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, " \""...)
		dst = append(dst, name...)
		dst = append(dst, "\": "...)
		dst = jsonrpc.AppendStringSlash(dst, v)
	}
	dst = append(dst, '{')
	field("from", ev.Req.From, true)
	field("from_tag", ev.FromTag, false)
	field("to", ev.Req.To, false)
	field("ruri", ev.Req.RURI, false)
	field("callid", ev.Req.CallID, false)
	field("cseq", ev.CSeq, false)
	field("src_ip", ev.SrcIP, false)
	dst = append(dst, ", \"src_port\": "...)
	dst = strconv.AppendInt(dst, int64(ev.SrcPort), 10)
	field("proto", ev.Proto, false)
	field("ctype", ev.Req.ContentType, false)
	field("body", ev.Req.Body, false)
	return append(dst, " }"...)
}
