package main

// The bytes imcbench writes and reads: E_IMC_MESSAGE events as OpenSIPS
// raises them, and the few parts of imcd's t_uac_dlg requests the sink
// needs, found without a JSON parse.

import (
	"bytes"
	"strconv"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// benchDomain is the domain of every room and user imcbench makes.
const benchDomain = "bench.test"

// chatMarker starts the text of every chat line imcbench sends, followed by
// the event's sequence number; imcd relays it as "<user@domain>: bench N …".
const chatMarker = "bench "

// chatFiller pads a chat line to about 40 bytes, the body size of the
// native-module measurements in opensips-wire/perf/results.txt.
const chatFiller = " hello everybody in this room"

// appendEvent appends one E_IMC_MESSAGE notification, field for field as
// OpenSIPS's event_datagram/event_stream write it (see
// opensips-wire/events/datagram/02-plain.json), from sip:user@bench.test to
// sip:room@bench.test. The Call-ID is "b<seq>x<run>@imcbench": unique per
// event and run, so imcd's duplicate filter never drops one, and carried back
// in In-Reply-To by the replies to a command. An empty text sends the chat
// line of seq (appendChatText).
func appendEvent(dst []byte, user, room string, seq uint64, run uint32, text string) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:`...)
	dst = append(dst, user...)
	dst = append(dst, "@"+benchDomain+`","from_tag":"t`...)
	dst = strconv.AppendUint(dst, seq, 16)
	dst = append(dst, `","to":"sip:`...)
	dst = append(dst, room...)
	dst = append(dst, "@"+benchDomain+`","ruri":"sip:`...)
	dst = append(dst, room...)
	dst = append(dst, "@"+benchDomain+`","callid":"`...)
	dst = appendCallID(dst, seq, run)
	dst = append(dst, `","cseq":"1","src_ip":"127.0.0.1","src_port":5071,"proto":"udp","ctype":"text/plain","body":`...)
	if text == "" {
		dst = append(dst, '"')
		dst = appendChatText(dst, seq)
		dst = append(dst, '"')
	} else {
		dst = jsonrpc.AppendString(dst, text)
	}
	return append(dst, "}}"...)
}

// appendCallID appends the Call-ID of event seq of run.
func appendCallID(dst []byte, seq uint64, run uint32) []byte {
	dst = append(dst, 'b')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, 'x')
	dst = strconv.AppendUint(dst, uint64(run), 10)
	return append(dst, "@imcbench"...)
}

// appendChatText appends the text of chat line seq: "bench <seq> hello …".
func appendChatText(dst []byte, seq uint64) []byte {
	dst = append(dst, chatMarker...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, chatFiller...)
}

// uacPrefixes are how imcd's t_uac_dlg requests begin (old and 4.x names).
var uacPrefixes = [][]byte{
	[]byte(`{"jsonrpc":"2.0","method":"t_uac_dlg",`),
	[]byte(`{"jsonrpc":"2.0","method":"tm:uac_dlg",`),
}

// isUAC reports whether datagram b is a t_uac_dlg request.
func isUAC(b []byte) bool {
	for _, p := range uacPrefixes {
		if bytes.HasPrefix(b, p) {
			return true
		}
	}
	return false
}

var idKey = []byte(`"id":`)

// trailingID returns the numeric id of a request whose last member is
// "id" (imcd writes it last): {...,"id":123}. A quote cannot occur unescaped
// inside a JSON string, so the last `"id":` is the member.
func trailingID(b []byte) (uint64, bool) {
	i := bytes.LastIndex(b, idKey)
	if i < 0 {
		return 0, false
	}
	n, digits := leadingUint(b[i+len(idKey):])
	return n, digits > 0
}

// leadingUint parses the decimal digits at the start of b and says how many
// there were; 0 digits when there are none or they overflow.
func leadingUint(b []byte) (n uint64, digits int) {
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, 0
		}
		n = n*10 + d
	}
	return n, i
}

var (
	inReplyToMark = []byte(`In-Reply-To: b`)
	bodyMark      = []byte(": " + chatMarker)
)

// eventSeq returns the sequence number of the event a t_uac_dlg request
// answers: from its In-Reply-To header (a reply to a command carries the
// command's Call-ID, "b<seq>x<run>@imcbench"; the run must match) or else
// from a relayed chat line ("<user@domain>: bench <seq> …").
func eventSeq(b []byte, run uint32) (uint64, bool) {
	if i := bytes.Index(b, inReplyToMark); i >= 0 {
		rest := b[i+len(inReplyToMark):]
		seq, digits := leadingUint(rest)
		if digits == 0 || digits == len(rest) || rest[digits] != 'x' {
			return 0, false
		}
		r, rd := leadingUint(rest[digits+1:])
		return seq, rd > 0 && r == uint64(run)
	}
	if i := bytes.Index(b, bodyMark); i >= 0 {
		seq, digits := leadingUint(b[i+len(bodyMark):])
		return seq, digits > 0
	}
	return 0, false
}

// okMessage is the Message of opensips-wire/t_uac_dlg/ok_200.response.json:
// the headers of the 200 OK the UAS sent.
const okMessage = `Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK601e.64a00654.0\r\nTo: <sip:ok@127.0.0.1>;tag=uas5090\r\n` +
	`From: <sip:chat-1@127.0.0.1>;tag=room1tag\r\nCSeq: 10 MESSAGE\r\nCall-ID: 2dba7ab300f3f139-8292@127.0.0.1\r\n` +
	`Content-Length: 0\r\n\r\n`

// appendFullOK appends the answer as OpenSIPS really sends it, with the
// reply's headers in "Message".
func appendFullOK(dst []byte, id uint64) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","result":{"Status":"200 OK","Message":"`+okMessage+`"},"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, '}')
}

// appendOK appends the answer OpenSIPS gives a t_uac_dlg whose transaction
// ended with 200 OK (without the reply's headers, which imcd ignores).
func appendOK(dst []byte, id uint64) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","result":{"Status":"200 OK"},"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, '}')
}
