package opensipstest

import (
	"strings"

	"github.com/valyala/fastjson"
)

// OpenSIPSString returns the string at path (keys from the top) in the
// JSON object raw as OpenSIPS reads it, and whether there is one. OpenSIPS
// parses MI requests with cJSON and looks members up with
// cJSON_GetObjectItem: keys compared ignoring ASCII case, the first match
// taken, keys and strings being C strings (cut at a NUL). So
// {"Method":"core:log_level","method":"core:uptime"} names core:log_level,
// whatever a reader that compares exactly (fastjson, imcd) finds. Tests use
// it as the oracle of what a request makes OpenSIPS do.
func OpenSIPSString(raw []byte, path ...string) (string, bool) {
	var p fastjson.Parser
	v, err := p.ParseBytes(raw)
	if err != nil {
		return "", false
	}
	return openSIPSString(v, path...)
}

// openSIPSString is OpenSIPSString on a parsed value.
func openSIPSString(v *fastjson.Value, path ...string) (string, bool) {
	for _, name := range path {
		o, err := v.Object()
		if err != nil {
			return "", false
		}
		v = nil
		o.Visit(func(k []byte, val *fastjson.Value) {
			if v == nil && foldASCII(cString(string(k))) == foldASCII(name) {
				v = val
			}
		})
		if v == nil {
			return "", false
		}
	}
	b, err := v.StringBytes()
	if err != nil {
		return "", false
	}
	return cString(string(b)), true
}

// OpenSIPSMethod is the method OpenSIPS finds in an MI request; false when
// it finds none that is a string, which crashes mi_datagram.
func OpenSIPSMethod(raw []byte) (string, bool) { return OpenSIPSString(raw, methodKey) }

const methodKey = "method"

// cString is s as C reads it: up to its first NUL.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// foldASCII lowers ASCII letters only, as cJSON's tolower does in the C
// locale (strings.ToLower would also fold non-ASCII letters).
func foldASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
