package jsonrpc

import (
	"strings"

	"github.com/valyala/fastjson"
)

// The members of a JSON-RPC 2.0 envelope, the only top-level keys Decode
// reads.
var envelopeMembers = []string{"jsonrpc", "method", "params", "id", "result", "error"}

// maxKeysPairwise is how many keys CheckKeys compares pair by pair; an
// object with more is checked through a map.
const maxKeysPairwise = 16

// CheckKeys refuses an object that OpenSIPS could read otherwise than imcd
// does. OpenSIPS looks keys up with cJSON_GetObjectItem: ignoring ASCII
// case, up to a NUL (its keys are C strings), and taking the first match;
// imcd (fastjson) compares exactly. So o is refused when it holds a key
// twice, or a key that reads as one of known only under cJSON's rules
// ("Method", "METHOD", "method\u0000x" for "method"): two readers would
// then disagree on which value is meant. The error is an Invalid Request
// (-32600) whose data names the key. A nil o passes.
func CheckKeys(o *fastjson.Object, known ...string) *Error {
	bad, _ := checkKeys(o, known)
	return bad
}

// checkKeys is CheckKeys that also says which name the refusal is about:
// the known member read twice, or the key appearing twice.
func checkKeys(o *fastjson.Object, known []string) (bad *Error, name string) {
	if o == nil {
		return nil, ""
	}
	n := 0
	var seen map[string]struct{}
	if o.Len() > maxKeysPairwise {
		seen = make(map[string]struct{}, o.Len())
	}
	var keys [maxKeysPairwise]string
	o.Visit(func(k []byte, _ *fastjson.Value) {
		if bad != nil {
			return
		}
		key := string(k)
		for _, m := range known {
			if key != m && asOpenSIPSReads(key, m) {
				bad, name = keyError(key, "differs from \""+m+"\" only in what OpenSIPS ignores (case, or what follows a NUL)"), m
				return
			}
		}
		if seen != nil {
			if _, dup := seen[key]; dup {
				bad, name = keyError(key, "appears twice"), key
			}
			seen[key] = struct{}{}
			return
		}
		for _, prev := range keys[:n] {
			if prev == key {
				bad, name = keyError(key, "appears twice"), key
				return
			}
		}
		keys[n] = key
		n++
	})
	return bad, name
}

// asOpenSIPSReads reports whether cJSON's case-insensitive lookup of name
// would find key: equal ignoring ASCII case, the key cut at its first NUL.
func asOpenSIPSReads(key, name string) bool {
	if i := strings.IndexByte(key, 0); i >= 0 {
		key = key[:i]
	}
	if len(key) != len(name) {
		return false
	}
	for i := 0; i < len(key); i++ {
		if lower(key[i]) != lower(name[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// keyError is the Invalid Request naming a key (clipped: it was sent by
// whoever reached the socket).
func keyError(key, why string) *Error {
	if len(key) > 64 {
		key = key[:64] + "..."
	}
	return &Error{Code: CodeInvalidRequest, Message: "Invalid Request",
		Data: "key " + string(AppendString(nil, key)) + " " + why}
}
