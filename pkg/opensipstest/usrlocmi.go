package opensipstest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// ulShowContact serves ul_show_contact / usrloc:show_contact (params
// table_name, aor) as usrloc's mi_usrloc_show_contact: captured as
// mi/datagram/usrloc_show_contact and usrloc_show_contact_none.
func (s *Server) ulShowContact(r *request) {
	ps, je := miParams(r, []string{"table_name", "aor"})
	if je != nil {
		s.replyError(r, je)
		return
	}
	table, je := miString(ps, "table_name")
	if je != nil {
		s.replyError(r, je)
		return
	}
	if table != UsrlocTable {
		s.replyError(r, miError(404, "Table not found"))
		return
	}
	aor, je := miString(ps, "aor")
	if je != nil {
		s.replyError(r, je)
		return
	}
	at := strings.LastIndexByte(aor, '@')
	if at < 0 { // usrloc runs with use_domain: an AOR needs its domain
		s.replyError(r, miError(400, "Domain missing in AOR"))
		return
	}
	now := time.Now()
	s.ul.mu.Lock()
	rec := s.ul.records[aorKey(aor[:at], aor[at+1:])]
	var b []byte
	if rec != nil {
		b = appendAORNode(nil, rec, now, false)
	}
	s.ul.mu.Unlock()
	if rec == nil {
		s.replyError(r, miError(404, "AOR not found"))
		return
	}
	s.replyResult(r, b)
}

// ulDump serves ul_dump / usrloc:dump, with an optional brief (AORs only):
// captured as mi/datagram/usrloc_dump and usrloc_dump_brief. The real
// table lists AORs in hash order; the fake lists them in registration order.
func (s *Server) ulDump(r *request) {
	ps, je := miParams(r, []string{}, []string{"brief"})
	if je != nil {
		s.replyError(r, je)
		return
	}
	brief := false
	if _, ok := ps["brief"]; ok {
		n, je := miInt(ps, "brief")
		if je != nil {
			s.replyError(r, je)
			return
		}
		brief = n != 0
	}
	now := time.Now()
	b := []byte(`{"Domains":[{"name":"` + UsrlocTable + `","hash_size":` + strconv.Itoa(ulHashSize) + `,"AORs":[`)
	s.ul.mu.Lock()
	for i, rec := range s.ul.order {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAORNode(b, rec, now, brief)
	}
	s.ul.mu.Unlock()
	s.replyResult(r, append(b, "]}]}"...))
}

// appendAORNode appends one AOR as usrloc's MI shows it. Called with the
// table locked.
func appendAORNode(dst []byte, r *aorRecord, now time.Time, brief bool) []byte {
	dst = append(dst, `{"AOR":`...)
	dst = jsonrpc.AppendString(dst, r.aor)
	if brief {
		return append(dst, '}')
	}
	dst = append(dst, `,"Contacts":[`...)
	for i, c := range r.contacts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"Contact":`...)
		dst = jsonrpc.AppendString(dst, c.uri)
		dst = append(dst, `,"ContactID":"`...)
		dst = strconv.AppendUint(dst, c.id, 10)
		dst = append(dst, `","Expires":`...)
		// usrloc compares whole seconds; the fake compares at full clock
		// resolution, so that a test need not wait for the next second.
		if now.After(c.expires) {
			dst = append(dst, `"expired"`...)
		} else {
			dst = strconv.AppendInt(dst, c.expires.Unix()-now.Unix(), 10)
		}
		dst = append(dst, `,"Q":"","Callid":`...)
		dst = jsonrpc.AppendString(dst, c.callID)
		dst = append(dst, `,"Cseq":`...)
		dst = strconv.AppendInt(dst, int64(c.cseq), 10)
		dst = append(dst, `,"User-agent":"`+ulUserAgent+`","State":"CS_NEW","Flags":0,"Cflags":"","Socket":"`+ulSocket+`","Methods":`...)
		dst = strconv.AppendUint(dst, ulMethods, 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// miParams matches r's params to one of a command's recipes (lists of param
// names) as OpenSIPS's MI core does: by count, then for named params by
// name. It returns the params by name.
func miParams(r *request, recipes ...[]string) (map[string]*fastjson.Value, *jsonrpc.Error) {
	var (
		arr   []*fastjson.Value
		named map[string]*fastjson.Value
	)
	switch {
	case r.params == nil:
	case r.params.Type() == fastjson.TypeArray:
		arr, _ = r.params.Array()
	default:
		named = map[string]*fastjson.Value{}
		o, _ := r.params.Object()
		o.Visit(func(k []byte, v *fastjson.Value) { named[string(k)] = v })
	}
	n := len(arr) + len(named)
	var fit [][]string
	for _, rc := range recipes {
		if len(rc) == n {
			fit = append(fit, rc)
		}
	}
	if len(fit) == 0 {
		return nil, errParamCount
	}
	if named == nil {
		if len(fit) > 1 {
			return nil, jsonrpc.InvalidParams("Ambiguous call, use named parameters instead")
		}
		out := make(map[string]*fastjson.Value, n)
		for i, name := range fit[0] {
			out[name] = arr[i]
		}
		return out, nil
	}
	for _, rc := range fit {
		if !slices.ContainsFunc(rc, func(name string) bool { return named[name] == nil }) {
			return named, nil
		}
	}
	return nil, errParamNames
}

// miString is get_mi_string_param: a string, or a number as its integer.
func miString(ps map[string]*fastjson.Value, name string) (string, *jsonrpc.Error) {
	v := ps[name]
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b), nil
	case fastjson.TypeNumber:
		return strconv.FormatInt(int64(v.GetInt()), 10), nil
	}
	return "", jsonrpc.InvalidParams("Bad type for parameter '" + name + "'")
}

// miInt is get_mi_int_param: a number, or a string holding an integer.
func miInt(ps map[string]*fastjson.Value, name string) (int, *jsonrpc.Error) {
	v := ps[name]
	switch v.Type() {
	case fastjson.TypeNumber:
		return v.GetInt(), nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if n, err := strconv.Atoi(string(b)); err == nil {
			return n, nil
		}
	}
	return 0, jsonrpc.InvalidParams("Bad type for parameter '" + name + "'")
}
