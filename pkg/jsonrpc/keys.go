package jsonrpc

import (
	"bytes"

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
// the known member read twice, or the key appearing twice. It allocates
// nothing for an object of up to maxKeysPairwise keys that passes: every
// event and every MI reply goes through it.
func checkKeys(o *fastjson.Object, known []string) (bad *Error, name string) {
	if o == nil {
		return nil, ""
	}
	n := 0
	var seen map[string]struct{}
	if o.Len() > maxKeysPairwise {
		seen = make(map[string]struct{}, o.Len())
	}
	var keys [maxKeysPairwise][]byte // point into the parser's buffer: valid during Visit
	o.Visit(func(key []byte, _ *fastjson.Value) {
		if bad != nil {
			return
		}
		for _, m := range known {
			if string(key) != m && asOpenSIPSReads(key, m) {
				bad, name = keyError(key, "differs from \""+m+"\" only in what OpenSIPS ignores (case, or what follows a NUL)"), m
				return
			}
		}
		if seen != nil {
			if _, dup := seen[string(key)]; dup {
				bad, name = keyError(key, "appears twice"), string(key)
			}
			seen[string(key)] = struct{}{}
			return
		}
		for _, prev := range keys[:n] {
			if string(prev) == string(key) {
				bad, name = keyError(key, "appears twice"), string(key)
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
func asOpenSIPSReads(key []byte, name string) bool {
	if i := bytes.IndexByte(key, 0); i >= 0 {
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
func keyError(key []byte, why string) *Error {
	k := string(key)
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return &Error{Code: CodeInvalidRequest, Message: "Invalid Request",
		Data: "key " + string(AppendString(nil, k)) + " " + why}
}
