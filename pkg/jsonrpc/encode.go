package jsonrpc

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. It escapes what JSON requires
// ('"', '\\' and bytes below 0x20) and nothing else, like OpenSIPS's cJSON:
// non-ASCII bytes, including invalid UTF-8 a user sent, pass through raw, so
// a body reaches its recipients byte for byte.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, false) }

// AppendStringSlash appends s as AppendString does, and also escapes '/' as
// "\/", as OpenSIPS's json module prints strings (what the OpenSIPS script
// of RabbitMQ mode publishes).
func AppendStringSlash(dst []byte, s string) []byte { return appendString(dst, s, true) }

func appendString(dst []byte, s string, slash bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && (c != '/' || !slash) {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\', '/':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendID appends a request id as Decode accepted it (a number, a string
// or null), or null when id is nil. A string goes through AppendString, so a
// control byte comes back escaped as JSON wants it ("\u0001"), never as
// fastjson's own encoder would write it ("\x01", not JSON); a number is
// written as it was sent when it is a JSON number, else as null (Decode
// refuses the others but for leading zeros: 01).
func AppendID(dst []byte, id *fastjson.Value) []byte {
	if id == nil {
		return append(dst, "null"...)
	}
	switch id.Type() {
	case fastjson.TypeString:
		b, _ := id.StringBytes()
		return AppendString(dst, string(b))
	case fastjson.TypeNumber:
		start := len(dst)
		if dst = id.MarshalTo(dst); ValidNumber(dst[start:]) {
			return dst
		}
		dst = dst[:start]
	}
	return append(dst, "null"...)
}

// ErrNotJSON is returned by AppendValue for a value fastjson accepted that
// JSON does not have: a number such as NaN, Inf, +1, 01 or 1.
var ErrNotJSON = errors.New("jsonrpc: not a JSON value")

// AppendValue appends v re-encoded: objects and arrays in their order, keys
// and strings through AppendString, numbers as written once checked
// against JSON's grammar (fastjson also takes NaN, Inf, +1, 01 or 1. as
// numbers, which AppendValue refuses with ErrNotJSON). What it appends is
// what imcd understood of v, and nothing else.
func AppendValue(dst []byte, v *fastjson.Value) ([]byte, error) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst = append(dst, '{')
		var err error
		i := 0
		o.Visit(func(k []byte, val *fastjson.Value) {
			if err != nil {
				return
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			i++
			dst = AppendString(dst, string(k))
			dst = append(dst, ':')
			dst, err = AppendValue(dst, val)
		})
		if err != nil {
			return dst, err
		}
		return append(dst, '}'), nil
	case fastjson.TypeArray:
		a, _ := v.Array()
		dst = append(dst, '[')
		for i, e := range a {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendValue(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return AppendString(dst, string(b)), nil
	case fastjson.TypeNumber:
		n := v.MarshalTo(nil)
		if !ValidNumber(n) {
			return dst, fmt.Errorf("%w: number %.32q", ErrNotJSON, n)
		}
		return append(dst, n...), nil
	}
	return v.MarshalTo(dst), nil // true, false, null
}

// AppendRequest appends {"jsonrpc":"2.0","method":<method>[,"params":<params>][,"id":<id>]},
// a request as OpenSIPS's MI reads it: params and id already encoded
// (AppendValue, AppendID, AppendString), nil to leave them out (no id: a
// notification).
func AppendRequest(dst []byte, method string, params, id []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","method":`...)
	dst = AppendString(dst, method)
	if params != nil {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	if id != nil {
		dst = append(dst, `,"id":`...)
		dst = append(dst, id...)
	}
	return append(dst, '}')
}

// ValidNumber reports whether b is a number by JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func ValidNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(b)
}

// digits returns the index after the run of digits starting at i.
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// AppendResult appends {"jsonrpc":"2.0","result":<result>,"id":<id>}, the
// reply shape of OpenSIPS's MI; result is already-encoded JSON and id the
// encoded id (see AppendID).
func AppendResult(dst, id, result []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","result":`...)
	dst = append(dst, result...)
	dst = append(dst, `,"id":`...)
	dst = append(dst, id...)
	return append(dst, '}')
}

// AppendError appends {"jsonrpc":"2.0","error":{"code":…,"message":…[,"data":…]},"id":<id>}.
func AppendError(dst, id []byte, e *Error) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, e.Message)
	if e.Data != "" {
		dst = append(dst, `,"data":`...)
		dst = AppendString(dst, e.Data)
	}
	dst = append(dst, `},"id":`...)
	dst = append(dst, id...)
	return append(dst, '}')
}
