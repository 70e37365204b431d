package jsonrpc

import (
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

// AppendID appends a request id as it was received (number, string or null),
// or null when id is nil.
func AppendID(dst []byte, id *fastjson.Value) []byte {
	if id == nil {
		return append(dst, "null"...)
	}
	return id.MarshalTo(dst)
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
