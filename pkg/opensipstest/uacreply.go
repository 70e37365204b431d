package opensipstest

import (
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// RefusedCode and RefusedMessage make the error t_uac_dlg gets when
// MaxTransactions are in progress: what OpenSIPS answers when tm cannot
// allocate the transaction in shared memory. Inferred from the source, not
// captured: in OpenSIPS/opensips, modules/tm/uac.c t_uac() returns
// E_OUT_OF_MEM (-2) when build_cell() fails; modules/tm/mi.c
// mi_tm_uac_dlg() turns that into init_mi_error(sip_error,
// err2reason_phrase(..., "MI/UAC")); and error.c err2reason_phrase() maps
// E_OUT_OF_MEM, in a build without DEBUG, to 500 "Server error occurred
// (2/MI/UAC)" (a DEBUG build says "Excuse me I ran out of memory
// (2/MI/UAC)"). The measured run at 1,200 lines/s ran out of shared memory
// ("not enough free shm memory", tm new_t failed), but the t_uac_dlg
// replies of that moment were not kept.
const (
	RefusedCode    = 500
	RefusedMessage = "Server error occurred (2/MI/UAC)"
)

// appendStatusMessage appends a final-reply result: {"Status":…,"Message":…}.
func appendStatusMessage(dst []byte, status, message string) []byte {
	dst = append(dst, `{"Status":`...)
	dst = jsonrpc.AppendString(dst, status)
	dst = append(dst, `,"Message":`...)
	dst = jsonrpc.AppendString(dst, message)
	return append(dst, '}')
}

// replyMessage builds the Message of a final reply the way OpenSIPS reports
// it: the reply's headers from the first one, as in ok_200.response.json.
func replyMessage(d *Delivery, seq uint64) string {
	to, _ := d.Header("To")
	from, _ := d.Header("From")
	var b strings.Builder
	appendVia(&b)
	b.WriteString("To: ")
	b.WriteString(to)
	b.WriteString(";tag=uas5090\r\nFrom: ")
	b.WriteString(from)
	b.WriteString("\r\nCSeq: ")
	b.WriteString(replyCSeq(d))
	b.WriteString("\r\nCall-ID: ")
	b.WriteString(replyCallID(d, seq))
	b.WriteString("\r\nContent-Length: 0\r\n\r\n")
	return b.String()
}

// proxyNotFoundMessage builds the Message of the 404 that OpenSIPS's own
// proxy route answers for an AOR without contact, shaped like
// via_proxy_unregistered_404.response.json: its own To tag, Call-ID before
// CSeq, and a Server header.
func proxyNotFoundMessage(d *Delivery, seq uint64) string {
	to, _ := d.Header("To")
	from, _ := d.Header("From")
	var b strings.Builder
	appendVia(&b)
	b.WriteString("To: ")
	b.WriteString(to)
	b.WriteString(";tag=")
	b.WriteString(randomHex(2))
	b.WriteString("-")
	b.WriteString(randomHex(16))
	b.WriteString("\r\nFrom: ")
	b.WriteString(from)
	b.WriteString("\r\nCall-ID: ")
	b.WriteString(replyCallID(d, seq))
	b.WriteString("\r\nCSeq: ")
	b.WriteString(replyCSeq(d))
	b.WriteString("\r\nServer: OpenSIPS (4.1.0-dev (x86_64/linux))\r\nContent-Length: 0\r\n\r\n")
	return b.String()
}

// appendVia writes tm's Via with a branch shaped like the captured ones
// (z9hG4bK601e.64a00654.0).
func appendVia(b *strings.Builder) {
	b.WriteString("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK")
	b.WriteString(randomHex(2))
	b.WriteString(".")
	b.WriteString(randomHex(4))
	b.WriteString(".0\r\n")
}

// replyCSeq is the request's CSeq, or tm's default.
func replyCSeq(d *Delivery) string {
	if cseq, ok := d.Header("CSeq"); ok {
		return cseq
	}
	return "10 MESSAGE"
}

// replyCallID is the request's Call-ID, or one shaped like tm's
// (2dba7ab300f3f139-8292@127.0.0.1), unique per transaction.
func replyCallID(d *Delivery, seq uint64) string {
	if callID, ok := d.Header("Call-ID"); ok {
		return callID
	}
	return "2dba7ab300f3" + strconv.FormatUint(0xf139+seq, 16) + "-" + strconv.Itoa(os.Getpid()) + "@127.0.0.1"
}

// randomHex returns n random bytes in lower-case hex.
func randomHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b)
}
