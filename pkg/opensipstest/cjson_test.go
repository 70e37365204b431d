package opensipstest

import "testing"

// TestOpenSIPSString: members as cJSON_GetObjectItem finds them.
func TestOpenSIPSString(t *testing.T) {
	f := func(raw string, path []string, want string, wantOK bool) {
		t.Helper()
		got, ok := OpenSIPSString([]byte(raw), path...)
		if got != want || ok != wantOK {
			t.Fatalf("OpenSIPSString(%s, %v) = %q, %v; want %q, %v", raw, path, got, ok, want, wantOK)
		}
	}
	m := []string{"method"}
	f(`{"method":"core:uptime"}`, m, "core:uptime", true)
	f(`{"Method":"core:log_level","method":"core:uptime"}`, m, "core:log_level", true)
	f(`{"method":"core:uptime","METHOD":"core:kill"}`, m, "core:uptime", true)
	f(`{"method\u0000x":"core:kill","method":"core:uptime"}`, m, "core:kill", true)
	f(`{"method":"core:uptime\u0000x"}`, m, "core:uptime", true)
	f(`{"METHOD":1,"method":"core:uptime"}`, m, "", false)
	f(`{"meth\u00f6d":"x"}`, m, "", false)
	f(`[{"method":"x"}]`, m, "", false)
	f(`{`, m, "", false)
	f(`{"params":{"COMMAND":"core:kill","command":"x"}}`, []string{"params", "command"}, "core:kill", true)
}
