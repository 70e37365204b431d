package opensips

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestShippedScript checks that scripts/opensips/imcd.cfg pushes the event
// params so that they come out in the captured order, and that imcd knows
// every one of them.
func TestShippedScript(t *testing.T) {
	cfg := string(readWire(t, "../../scripts/opensips/imcd.cfg"))
	var pushed []string
	for _, m := range regexp.MustCompile(`(?m)^\s*\$avp\(imc_attr\) = "([a-z_]+)";`).FindAllStringSubmatch(cfg, -1) {
		pushed = append(pushed, m[1])
	}
	slices.Reverse(pushed) // AVPs are stacks
	want := []string{paramFrom, paramFromTag, paramTo, paramRURI, paramCallID, paramCSeq, paramSrcIP, paramSrcPort, paramProto, paramCType, paramBody}
	if !slices.Equal(pushed, want) {
		t.Fatalf("the script emits %v, want %v", pushed, want)
	}
	// Each name is followed by exactly one value push (or an if/else pair).
	vals := len(regexp.MustCompile(`(?m)^\s*\$avp\(imc_val\) = [^N]`).FindAllString(cfg, -1))
	if vals != 11+3 { // three optional values have an else branch
		t.Fatalf("%d value pushes", vals)
	}
	for _, line := range []string{
		`raise_event("` + DefaultEventName + `", $avp(imc_attr), $avp(imc_val))`,
		`t_newtran()`, `t_reply(202, "Accepted")`, `$ru =~ "^sip:chat-"`,
		`modparam("mi_datagram", "socket_name", "udp:127.0.0.1:8080")`,
		`#startup_route {`, `subscribe_event("E_IMC_MESSAGE", "tcp:127.0.0.1:9998");`,
		`#modparam("usrloc", "use_domain", 1)`,
	} {
		if !strings.Contains(cfg, line) {
			t.Errorf("the script lacks %s", line)
		}
	}
	// The usrloc events imcd takes, subscribed on the same socket.
	for _, ev := range ReachabilityEventNames() {
		if !strings.Contains(cfg, `#	subscribe_event("`+ev+`", "tcp:127.0.0.1:9998");`) {
			t.Errorf("the script's startup_route does not subscribe %s", ev)
		}
	}
}
