package mi

import (
	"bytes"
	"errors"
)

// maxReplyName is the longest reply FIFO name accepted (NAME_MAX).
const maxReplyName = 255

// fifoFrame is one request read from the FIFO: ":reply_name:{json}".
type fifoFrame struct {
	reply []byte // the reply FIFO name; points into the read buffer
	req   []byte // the JSON-RPC request; points into the read buffer
}

// Outcomes of splitFIFO other than a complete request.
var (
	// errFIFOIncomplete: more bytes are needed.
	errFIFOIncomplete = errors.New("incomplete FIFO request")
	// errFIFOJunk: bytes that are no request at all (no ':' where a
	// request starts, a name with a line break or too long).
	errFIFOJunk = errors.New("not a FIFO request")
	// errFIFOBadValue: a reply name followed by something that is not a
	// JSON object or array; the rest of its line is dropped.
	errFIFOBadValue = errors.New("FIFO request is not JSON")
)

// splitFIFO finds the first request in b, the mi_fifo framing
// ":reply_name:" followed by one JSON value, with optional whitespace
// (opensips-cli writes no newline after the JSON; other clients do).
// Several writers may share the FIFO, so the JSON value is delimited by
// matching its brackets (outside strings) rather than by a newline.
//
// It returns how many bytes of b to drop in every case: the request, junk,
// or (errFIFOIncomplete) leading whitespace. With errFIFOIncomplete and
// errFIFOBadValue, f.reply is set once the name is known. It never fails to
// make progress: n > 0 unless err is errFIFOIncomplete.
func splitFIFO(b []byte) (f fifoFrame, n int, err error) {
	i := skipSpace(b, 0)
	if i == len(b) {
		return f, i, errFIFOIncomplete
	}
	if b[i] != ':' {
		// Junk: drop it up to the next ':', where a request may start.
		if j := bytes.IndexByte(b[i:], ':'); j >= 0 {
			return f, i + j, errFIFOJunk
		}
		return f, len(b), errFIFOJunk
	}
	start := i
	i++
	end := -1
	limit := min(len(b), i+maxReplyName+1)
	for k := i; k < limit; k++ {
		if b[k] == ':' {
			end = k
			break
		}
		if b[k] == '\n' {
			return f, k + 1, errFIFOJunk
		}
	}
	if end < 0 {
		if len(b)-i <= maxReplyName {
			return f, start, errFIFOIncomplete
		}
		return f, limit, errFIFOJunk
	}
	f.reply = b[i:end]
	i = skipSpace(b, end+1)
	if i == len(b) {
		return f, start, errFIFOIncomplete
	}
	if b[i] != '{' && b[i] != '[' {
		if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
			return f, i + j + 1, errFIFOBadValue
		}
		return f, len(b), errFIFOBadValue
	}
	size, ok := scanJSON(b[i:])
	if !ok {
		return f, start, errFIFOIncomplete
	}
	f.req = b[i : i+size]
	return f, i + size, nil
}

// scanJSON returns the length of the JSON object or array at the start of
// b, by counting brackets outside strings; ok is false when it does not end
// within b. It does not validate: the request is still parsed afterwards.
func scanJSON(b []byte) (size int, ok bool) {
	depth := 0
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}
