package mi

import (
	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// OpenSIPS's -32602 data texts.
const (
	msgParamCount = "Too few or too many parameters"
	msgParamNames = "Named parameters do not match"
)

// matchParams returns the set of sets that params fit, the way OpenSIPS's
// MI core picks a command's recipe: the sets with as many names as there
// are params, then (for named params) the one whose names they are; params
// given as an array take the first set of the right length. No params, {}
// and [] fit the empty set; no sets at all means the command takes none.
func matchParams(sets [][]string, params *fastjson.Value) ([]string, *jsonrpc.Error) {
	n := 0
	var obj *fastjson.Object
	if params != nil {
		switch params.Type() {
		case fastjson.TypeObject:
			obj, _ = params.Object()
			n = obj.Len()
		case fastjson.TypeArray:
			a, _ := params.Array()
			n = len(a)
		}
	}
	if len(sets) == 0 {
		if n == 0 {
			return nil, nil
		}
		return nil, jsonrpc.InvalidParams(msgParamCount)
	}
	counted := false
	for _, set := range sets {
		if len(set) != n {
			continue
		}
		counted = true
		if obj == nil || hasAll(obj, set) {
			return set, nil
		}
	}
	if !counted {
		return nil, jsonrpc.InvalidParams(msgParamCount)
	}
	return nil, jsonrpc.InvalidParams(msgParamNames)
}

func hasAll(obj *fastjson.Object, names []string) bool {
	for _, name := range names {
		if obj.Get(name) == nil {
			return false
		}
	}
	return true
}

// StringParams matches params against sets (as the Server does before a
// handler runs) and returns the value of each param of the matched set, by
// name. Every value must be a JSON string; anything else is refused with
// -32602. The strings are copies, safe to keep.
func StringParams(params *fastjson.Value, sets [][]string) (map[string]string, error) {
	set, jerr := matchParams(sets, params)
	if jerr != nil {
		return nil, jerr
	}
	out := make(map[string]string, len(set))
	for i, name := range set {
		var v *fastjson.Value
		if params.Type() == fastjson.TypeArray {
			v = params.GetArray()[i]
		} else {
			v = params.Get(name)
		}
		b, err := v.StringBytes()
		if err != nil {
			return nil, jsonrpc.InvalidParams("Parameter '" + name + "' must be a string")
		}
		out[name] = string(b)
	}
	return out, nil
}
