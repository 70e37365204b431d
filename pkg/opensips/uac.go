package opensips

import (
	"fmt"
	"strconv"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// defaultContentType is used for a notice without one (the engine always
// sets one; this only keeps OpenSIPS from refusing "Content-Type missing").
const defaultContentType = "text/plain"

// maxCallIDLen bounds the Call-ID copied into In-Reply-To.
const maxCallIDLen = 255

// AppendUACRequest appends one MI t_uac_dlg request that sends notice n as a
// SIP MESSAGE, with JSON-RPC id and From tag fromTag, through nextHop when it
// is not "" (outbound_proxy):
//
//	{"jsonrpc":"2.0","method":"t_uac_dlg","params":{"method":"MESSAGE",
//	 "ruri":"sip:bob@example.com","headers":"From: <sip:chat-1@example.com>;tag=T\r\n
//	 To: <sip:bob@example.com>\r\nContent-Type: text/plain\r\n[In-Reply-To: CALLID\r\n]",
//	 ["next_hop":"sip:proxy",]"body":"..."},"id":ID}
//
// The headers param is built only from validated parts, because OpenSIPS
// pastes it into the SIP request: the URIs must hold only URI-safe bytes,
// the Content-Type only letters, digits, space and !#$&^_.+-/;= (otherwise
// the result is an error wrapping ErrUnsafeHeader), and In-Reply-To is left
// out when the Call-ID is not made of RFC 3261 word characters (backslash
// excluded: OpenSIPS turns a literal \r\n in headers into CRLF). The body
// goes only in the body param, escaped like OpenSIPS does (invalid UTF-8
// passes through raw). Content-Length is never sent: OpenSIPS adds it.
//
// With a reused dst it does not allocate.
func AppendUACRequest(dst []byte, id uint64, n *imc.Notice, fromTag, nextHop string) ([]byte, error) {
	if !validTag(fromTag) {
		return dst, fmt.Errorf("%w: From tag %q", ErrUnsafeHeader, fromTag)
	}
	dst, _, err := appendUAC(dst, id, n, fromTag, 0, false, Route{NextHop: nextHop})
	return dst, err
}

// Route is where a t_uac_dlg request sends its MESSAGE. The zero Route
// sends it to the member's address of record (the To URI), which a proxy
// looks up; NextHop alone sends that through the given proxy
// (outbound_proxy). With RURI, the MESSAGE goes to that contact of the
// member instead, from OpenSIPS's Socket when given and to NextHop (the
// registration's received address) when given: no lookup, one
// transaction (delivery_path = contact).
type Route struct {
	RURI, NextHop, Socket string
}

// Router says how to reach each member: Route gives a member's contact
// route (false: through the proxy), and Forget is told of a member whose
// direct MESSAGE did not arrive (their next one goes through the proxy).
// *contacts.Directory is one. Both are called on the hot path: they must
// not block.
type Router interface {
	Route(member imc.URI) (Route, bool)
	Forget(member imc.URI)
}

// appendUAC is AppendUACRequest with the From tag given as a prefix and,
// when withSeq, a hexadecimal sequence number appended to it (so that the
// MI client builds unique tags without allocating). omitted reports that an
// unsafe In-Reply-To was left out.
func appendUAC(dst []byte, id uint64, n *imc.Notice, tag string, seq uint64, withSeq bool, r Route) (out []byte, omitted bool, err error) {
	if err := checkURI("From", n.From); err != nil {
		return dst, false, err
	}
	if err := checkURI("To", n.To); err != nil {
		return dst, false, err
	}
	ct := n.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	if !validContentType(ct) {
		return dst, false, fmt.Errorf("%w: Content-Type %q", ErrUnsafeHeader, ct)
	}
	inReplyTo := n.InReplyTo != "" && validCallID(n.InReplyTo)
	omitted = n.InReplyTo != "" && !inReplyTo

	dst = append(dst, `{"jsonrpc":"2.0","method":"t_uac_dlg","params":{"method":"MESSAGE","ruri":`...)
	if r.RURI != "" {
		dst = jsonrpc.AppendString(dst, r.RURI)
	} else {
		dst = append(dst, '"')
		dst = appendURI(dst, n.To)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"headers":"From: <`...)
	dst = appendURI(dst, n.From)
	dst = append(dst, `>;tag=`...)
	dst = append(dst, tag...)
	if withSeq {
		dst = strconv.AppendUint(dst, seq, 16)
	}
	dst = append(dst, `\r\nTo: <`...)
	dst = appendURI(dst, n.To)
	dst = append(dst, `>\r\nContent-Type: `...)
	dst = append(dst, ct...)
	dst = append(dst, `\r\n`...)
	if inReplyTo {
		dst = append(dst, `In-Reply-To: `...)
		dst = appendEscaped(dst, n.InReplyTo)
		dst = append(dst, `\r\n`...)
	}
	dst = append(dst, '"')
	if r.NextHop != "" {
		dst = append(dst, `,"next_hop":`...)
		dst = jsonrpc.AppendString(dst, r.NextHop)
	}
	if r.Socket != "" {
		dst = append(dst, `,"socket":`...)
		dst = jsonrpc.AppendString(dst, r.Socket)
	}
	dst = append(dst, `,"body":`...)
	dst = jsonrpc.AppendString(dst, n.Body)
	dst = append(dst, `},"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, '}')
	return dst, omitted, nil
}

// appendURI appends "sip:user@host" (what imc.URI.String returns) without
// allocating.
func appendURI(dst []byte, u imc.URI) []byte {
	dst = append(dst, "sip:"...)
	dst = append(dst, u.User...)
	dst = append(dst, '@')
	return append(dst, u.Host...)
}

// appendEscaped appends s JSON-escaped, without quotes.
func appendEscaped(dst []byte, s string) []byte {
	start := len(dst)
	dst = jsonrpc.AppendString(dst, s)
	// Drop the quotes AppendString put around it.
	copy(dst[start:], dst[start+1:len(dst)-1])
	return dst[:len(dst)-2]
}

// checkURI validates, again, a URI that is about to be pasted between < and
// > in a header: imc.URI is validated when built, but a zero or hand-made
// value must not slip through.
func checkURI(which string, u imc.URI) error {
	if u.User == "" || u.Host == "" {
		return fmt.Errorf("%w: %s URI is empty", ErrUnsafeHeader, which)
	}
	for i := 0; i < len(u.User); i++ {
		if !uriUserByte[u.User[i]] {
			return fmt.Errorf("%w: %s URI user %q", ErrUnsafeHeader, which, u.User)
		}
	}
	for i := 0; i < len(u.Host); i++ {
		if !uriHostByte[u.Host[i]] {
			return fmt.Errorf("%w: %s URI host %q", ErrUnsafeHeader, which, u.Host)
		}
	}
	return nil
}

func validContentType(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ctypeByte[s[i]] {
			return false
		}
	}
	return true
}

// validCallID reports whether s is word ["@" word] of RFC 3261, without
// backslash.
func validCallID(s string) bool {
	if s == "" || len(s) > maxCallIDLen {
		return false
	}
	at := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '@' {
			if at >= 0 || i == 0 || i == len(s)-1 {
				return false
			}
			at = i
			continue
		}
		if !callIDByte[c] {
			return false
		}
	}
	return true
}

// validTag reports whether s is a non-empty RFC 3261 token.
func validTag(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// Byte classes. Each is a table built once by a plain function call into a
// package-level value that is never written afterwards.
var (
	uriUserByte = byteSet(alnum + "-_.!~*'()%&=+$,")
	uriHostByte = byteSet(alnum + "-.[]:")
	ctypeByte   = byteSet(alnum + "!#$&^_.+-/;= ")
	callIDByte  = byteSet(alnum + "-.!%*_+`'~()<>:\"/[]?{}")
	tokenByte   = byteSet(alnum + "-.!%*_+`'~")
)

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func byteSet(chars string) (t [256]bool) {
	for i := 0; i < len(chars); i++ {
		t[chars[i]] = true
	}
	return t
}
