package sipua

import (
	"bytes"
	"errors"
	"strconv"
)

// Message is one SIP request or response as read off the wire. Its byte
// slices point into the datagram it was parsed from: copy what outlives it.
type Message struct {
	// Method and RURI are set for a request, Status for a response.
	Method []byte
	RURI   []byte
	Status int
	// Vias are the Via header values, in order.
	Vias   [][]byte
	From   []byte
	To     []byte
	CallID []byte
	CSeq   []byte
	Body   []byte
}

var errMalformed = errors.New("sipua: malformed SIP message")

// parse reads one SIP message from b: the start line, the headers it
// needs (long and compact forms), and the body by Content-Length.
func parse(b []byte, m *Message) error {
	*m = Message{Vias: m.Vias[:0]}
	line, rest, ok := cutLine(b)
	if !ok {
		return errMalformed
	}
	if bytes.HasPrefix(line, []byte("SIP/2.0 ")) {
		if len(line) < 11 {
			return errMalformed
		}
		code, err := strconv.Atoi(string(line[8:11]))
		if err != nil {
			return errMalformed
		}
		m.Status = code
	} else {
		sp := bytes.IndexByte(line, ' ')
		sp2 := bytes.LastIndexByte(line, ' ')
		if sp <= 0 || sp2 <= sp {
			return errMalformed
		}
		m.Method, m.RURI = line[:sp], line[sp+1:sp2]
	}
	length := -1
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return errMalformed
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errMalformed
		}
		name := bytes.TrimSpace(line[:colon])
		val := bytes.TrimSpace(line[colon+1:])
		switch {
		case is(name, "via", "v"):
			m.Vias = append(m.Vias, val)
		case is(name, "from", "f"):
			m.From = val
		case is(name, "to", "t"):
			m.To = val
		case is(name, "call-id", "i"):
			m.CallID = val
		case is(name, "cseq", ""):
			m.CSeq = val
		case is(name, "content-length", "l"):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 {
				return errMalformed
			}
			length = n
		}
	}
	m.Body = rest
	if length >= 0 {
		if length > len(rest) {
			return errMalformed
		}
		m.Body = rest[:length]
	}
	return nil
}

func is(name []byte, long, compact string) bool {
	return bytes.EqualFold(name, []byte(long)) || (compact != "" && bytes.EqualFold(name, []byte(compact)))
}

// cutLine returns the line before the first CRLF (or LF) and what follows.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line = b[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, b[i+1:], true
}

// URIUser returns the user part of a SIP URI or a name-addr header value
// (`"A" <sip:alice@host;p>;tag=x` gives alice).
func URIUser(v []byte) []byte {
	if i := bytes.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
	}
	if i := bytes.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := bytes.IndexAny(v, "@;>"); i >= 0 && v[i] == '@' {
		return v[:i]
	}
	return nil
}

// appendResponse writes the response of code to request m, with a To tag
// of its own when the request had none.
func appendResponse(dst []byte, m *Message, code int, reason string) []byte {
	dst = append(dst, "SIP/2.0 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, reason...)
	dst = append(dst, "\r\n"...)
	for _, v := range m.Vias {
		dst = append(dst, "Via: "...)
		dst = append(dst, v...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "From: "...)
	dst = append(dst, m.From...)
	dst = append(dst, "\r\nTo: "...)
	dst = append(dst, m.To...)
	if !bytes.Contains(m.To, []byte(";tag=")) {
		dst = append(dst, ";tag=sipua"...)
	}
	dst = append(dst, "\r\nCall-ID: "...)
	dst = append(dst, m.CallID...)
	dst = append(dst, "\r\nCSeq: "...)
	dst = append(dst, m.CSeq...)
	dst = append(dst, "\r\nContent-Length: 0\r\n\r\n"...)
	return dst
}

// reason is the reason phrase of the codes an Agent answers with.
func reason(code int) string {
	switch code {
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 500:
		return "Server Internal Error"
	}
	return "Status"
}
