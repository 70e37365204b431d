// Package jsonrpc decodes and encodes JSON-RPC 2.0 envelopes the way
// OpenSIPS's MI and event interface speak them, on top of fastjson. It does
// no I/O.
//
// Decoded values point into the fastjson.Parser's buffer and die at its next
// Parse: copy what must outlive the call. Encoders append to a caller's buffer
// so hot paths can reuse one.
package jsonrpc

import (
	"errors"
	"strconv"

	"github.com/valyala/fastjson"
)

// Standard JSON-RPC error codes, as OpenSIPS uses them.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeServerError is the first of the implementation-defined server error
	// codes (-32000 to -32099).
	CodeServerError = -32000
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int
	Message string
	Data    string // omitted when empty
}

// Is makes errors.Is(err, ErrInvalidRequest) (or any error without Data)
// true for every error of the same code and message, whatever its Data.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Data == "" && t.Code == e.Code && t.Message == e.Message
}

func (e *Error) Error() string {
	s := strconv.Itoa(e.Code) + " " + e.Message
	if e.Data != "" {
		s += ": " + e.Data
	}
	return s
}

// The errors every JSON-RPC peer produces, with OpenSIPS's texts.
var (
	ErrParse          = &Error{Code: CodeParseError, Message: "Parse error"}
	ErrInvalidRequest = &Error{Code: CodeInvalidRequest, Message: "Invalid Request"}
	ErrMethodNotFound = &Error{Code: CodeMethodNotFound, Message: "Method not found"}
)

// InvalidParams returns OpenSIPS's -32602 error with data explaining it
// ("Too few or too many parameters", "Named parameters do not match").
func InvalidParams(data string) *Error {
	return &Error{Code: CodeInvalidParams, Message: "Invalid params", Data: data}
}

// Message is one decoded JSON-RPC 2.0 message: a request (Method and ID), a
// notification (Method, no ID) or a response (Result or Error, and ID).
// Every field points into the parser's buffer.
type Message struct {
	Method []byte          // nil for a response
	ID     *fastjson.Value // nil when the id key is absent
	Params *fastjson.Value // nil when absent; else an object or an array
	Result *fastjson.Value // responses only
	Error  *fastjson.Value // responses only
}

// IsRequest reports whether m is a request or notification.
func (m *Message) IsRequest() bool { return m.Method != nil }

// IsNotification reports whether m is a request without an id, which gets no
// reply.
func (m *Message) IsNotification() bool { return m.Method != nil && m.ID == nil }

// Decode parses data as one JSON-RPC 2.0 message. Malformed JSON gives
// ErrParse; anything that is not a single 2.0 envelope with a string method
// or a result/error gives an Invalid Request error (errors.Is
// ErrInvalidRequest; its Data says why when there is more to say): batches
// (imcd never accepts a JSON array, since OpenSIPS's mi_datagram crashes on
// one), an envelope OpenSIPS would read otherwise than imcd (a member twice,
// or under another case: see CheckKeys), an id that is not a string, a JSON
// number or null, a method with a control byte.
// When the envelope is invalid but its id could be read, Message.ID is set so
// the error can still be answered with it.
func Decode(p *fastjson.Parser, data []byte) (Message, error) {
	var m Message
	v, err := p.ParseBytes(data)
	if err != nil {
		return m, ErrParse
	}
	o, err := v.Object()
	if err != nil {
		return m, ErrInvalidRequest
	}
	keysErr, keysName := checkKeys(o, envelopeMembers)
	m.ID = o.Get("id")
	if m.ID != nil {
		switch m.ID.Type() {
		case fastjson.TypeString, fastjson.TypeNull:
		case fastjson.TypeNumber:
			// An integer (what every client sends) is cheap to check;
			// only another form is written out to be checked. AppendID
			// checks what it writes again (01 passes Int64).
			if _, err := m.ID.Int64(); err != nil && !ValidNumber(m.ID.MarshalTo(nil)) {
				m.ID = nil
				return m, invalid("id is not a JSON number")
			}
		default:
			m.ID = nil
			return m, ErrInvalidRequest
		}
	}
	if keysErr != nil {
		if keysName == "id" {
			m.ID = nil // which of them?
		}
		return m, keysErr
	}
	ver := o.Get("jsonrpc")
	if ver == nil {
		return m, ErrInvalidRequest
	}
	if b, err := ver.StringBytes(); err != nil || string(b) != "2.0" {
		return m, ErrInvalidRequest
	}
	if mv := o.Get("method"); mv != nil {
		b, err := mv.StringBytes()
		if err != nil || len(b) == 0 {
			return m, ErrInvalidRequest
		}
		if hasControl(b) {
			return m, invalid("method has a control character")
		}
		m.Method = b
		if pv := o.Get("params"); pv != nil {
			switch pv.Type() {
			case fastjson.TypeObject, fastjson.TypeArray:
				m.Params = pv
			default:
				return m, ErrInvalidRequest
			}
		}
		return m, nil
	}
	m.Result = o.Get("result")
	m.Error = o.Get("error")
	if (m.Result == nil) == (m.Error == nil) || m.ID == nil {
		return m, ErrInvalidRequest
	}
	return m, nil
}

// invalid is an Invalid Request saying why.
func invalid(why string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: ErrInvalidRequest.Message, Data: why}
}

// hasControl reports whether b holds a byte below 0x20 or DEL: no MI
// command or event name has one, and OpenSIPS would read a name with a
// NUL only up to it.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// ErrNotError is returned by DecodeError for a value that is not an error object.
var ErrNotError = errors.New("jsonrpc: not an error object")

// DecodeError reads a response's error object.
func DecodeError(v *fastjson.Value) (*Error, error) {
	o, err := v.Object()
	if err != nil {
		return nil, ErrNotError
	}
	c := o.Get("code")
	if c == nil {
		return nil, ErrNotError
	}
	code, err := c.Int()
	if err != nil {
		return nil, ErrNotError
	}
	e := &Error{Code: code}
	if mv := o.Get("message"); mv != nil {
		b, _ := mv.StringBytes()
		e.Message = string(b)
	}
	if dv := o.Get("data"); dv != nil {
		if b, err := dv.StringBytes(); err == nil {
			e.Data = string(b)
		} else {
			e.Data = string(dv.MarshalTo(nil))
		}
	}
	return e, nil
}
