package rabbitmq

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

// orderedKeys returns the keys of the object at path in a JSON file, in
// the file's order.
func orderedKeys(t *testing.T, file string, path ...string) []string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fastjson.ParseBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, err := v.Get(path...).Object()
	if err != nil {
		t.Fatalf("%s %v: %v", file, path, err)
	}
	var keys []string
	o.Visit(func(k []byte, _ *fastjson.Value) { keys = append(keys, string(k)) })
	return keys
}

// TestRabbitMQScript checks scripts/opensips/imcd-rabbitmq.cfg against the
// captures it produced: the JSON params in the captured order, the header
// names in the captured order (AVPs are stacks), the server and the
// replies.
func TestRabbitMQScript(t *testing.T) {
	raw, err := os.ReadFile("../../scripts/opensips/imcd-rabbitmq.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	var params []string
	for _, m := range regexp.MustCompile(`(?m)^\s*\$json\(ev/([a-z_]+)\) = `).FindAllStringSubmatch(cfg, -1) {
		if !slices.Contains(params, m[1]) {
			params = append(params, m[1])
		}
	}
	if want := orderedKeys(t, filepath.Join(wire, "01-json-utf8.imcd.shard.1.body")); !slices.Equal(params, want) {
		t.Errorf("the script builds %v, the capture has %v", params, want)
	}
	var headers []string
	for _, m := range regexp.MustCompile(`(?m)^\s*\$avp\(imc_hdr\) = "([a-z_]+)";`).FindAllStringSubmatch(cfg, -1) {
		headers = append(headers, m[1])
	}
	slices.Reverse(headers)
	if want := orderedKeys(t, filepath.Join(wire, "08-headers-plain.imcd.shard.3.meta.json"), "properties", "headers"); !slices.Equal(headers, want) {
		t.Errorf("the script sends headers %v, the capture has %v", headers, want)
	}
	for _, line := range []string{
		`loadmodule "event_rabbitmq.so"`, `loadmodule "json.so"`,
		`modparam("event_rabbitmq", "server_id", "[imcd] uri = amqp://guest:guest@127.0.0.1:5672; exchange = imcd.rooms; retries = 1")`,
		`$json(ev) := "{}";`,
		`if (!rabbitmq_publish("imcd", $ru, $json(ev), "application/json")) {`,
		`if (!rabbitmq_publish("imcd", $ru, $var(imc_body), "text/plain", $avp(imc_hdr), $avp(imc_hval))) {`,
		`t_newtran()`, `$ru =~ "^sip:chat-"`,
	} {
		if !strings.Contains(cfg, line) {
			t.Errorf("the script lacks %s", line)
		}
	}
	if n, m := strings.Count(cfg, `t_reply(500, "Server Internal Error");`), strings.Count(cfg, `t_reply(202, "Accepted");`); n != 2 || m != 2 {
		t.Errorf("%d replies 500 and %d replies 202, want one of each per route", n, m)
	}
}
