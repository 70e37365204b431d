package mi

import (
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// DefaultPassthrough returns the OpenSIPS commands imcd forwards unless
// told otherwise (mi_passthrough = allowlist): read-only commands that
// opensips-cli users reach for while running imcd, in their 4.x and 3.x
// spellings. docs/security.md says why each is there; anything that changes
// OpenSIPS (core:kill, core:log_level, tm:uac_dlg, evi:raise, cache and
// usrloc writes) or reveals users' data (usrloc:dump, the contacts and
// addresses of every registered user) is left out.
func DefaultPassthrough() []string {
	return []string{
		"core:uptime", "uptime",
		"core:version", "version",
		"core:ps", "ps",
		"core:help", "help",
		"statistics:get", "get_statistics",
		"statistics:list", "list_statistics",
		"evi:list", "events_list",
		"evi:subscribers", "subscribers_list",
	}
}

// CodeNotForwarded answers a command the pass-through policy keeps from
// OpenSIPS (like OpenSIPS's own HTTP-style codes: 403 Forbidden).
const CodeNotForwarded = 403

// forwards reports whether name may be passed to OpenSIPS: with Forward
// set, every command under PassthroughAll, else those of
// DefaultPassthrough and PassthroughAllow.
func (s *Server) forwards(name string) bool {
	if s.Forward == nil {
		return false
	}
	if s.PassthroughAll {
		return true
	}
	s.allowOnce.Do(func() {
		s.allowed = make(map[string]bool)
		for _, list := range [][]string{DefaultPassthrough(), s.PassthroughAllow} {
			for _, n := range list {
				s.allowed[n] = true
			}
		}
	})
	return s.allowed[name]
}

// errNotForwarded is the refusal of a command the policy keeps from
// OpenSIPS; it names the keys that would let it through.
func errNotForwarded(name string) *jsonrpc.Error {
	if len(name) > 64 {
		name = "this command"
	}
	return &jsonrpc.Error{Code: CodeNotForwarded, Message: "Not forwarded to OpenSIPS",
		Data: name + " is not one of the commands imcd passes to OpenSIPS (mi_passthrough = allowlist): " +
			"set mi_passthrough = all, or add it to mi_passthrough_allow"}
}
