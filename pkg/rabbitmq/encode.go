package rabbitmq

import (
	"strconv"

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
		dst = appendString(dst, v)
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

// appendString appends s as a JSON string the way the json module escapes
// it.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '/':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			if c < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			} else {
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '"')
}
