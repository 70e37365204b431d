package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "imcd.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sample holds a valid, non-default value for every key.
var sample = map[string]string{
	"db_url":                "mysql://opensips:pw@127.0.0.1/opensips",
	"data_dir":              "/var/lib/imcd",
	"rooms_table":           "rooms2",
	"members_table":         "members2",
	"bans_table":            "bans2",
	"moderation_table":      "moderation2",
	"create_tables":         "true",
	"hash_size":             "6",
	"imc_cmd_start_char":    "*",
	"max_body":              "2000",
	"create_on_join":        "false",
	"manager_user":          "rooms",
	"outbound_proxy":        "sip:127.0.0.1:5060;transport=tcp",
	"proxy_in_order":        "true",
	"shard_queue":           "100",
	"max_members":           "50",
	"max_rooms_per_user":    "3",
	"room_prefix":           "room-",
	"domains":               "example.com,example.org",
	"member_domains":        "*",
	"rate_limit":            "2.5",
	"rate_burst":            "5",
	"fanout_limit":          "50",
	"fanout_burst":          "500",
	"dedup_window":          "1m0s",
	"max_event_size":        "65536",
	"opensips_mi":           "unix:/run/opensips/mi.sock,udp:10.0.0.2:8080",
	"event_name":            "E_ROOMS",
	"event_listen":          "udp:127.0.0.1:7000",
	"event_socket":          "udp:10.0.0.5:7000",
	"event_sources":         "10.0.0.0/8,192.0.2.1/32",
	"event_subscribe":       "false",
	"event_expire":          "5m0s",
	"event_renew":           "30s",
	"delivery_timeout":      "40s",
	"delivery_queue":        "1000",
	"mi_datagram":           "unix:/run/imcd/mi.sock",
	"mi_http":               "127.0.0.1:9000",
	"mi_http_path":          "/json",
	"mi_http_hosts":         "imcd.internal,mi.example.com",
	"mi_http_origins":       "https://admin.example.com",
	"mi_fifo":               "/run/imcd/fifo",
	"mi_fifo_reply_dir":     "/run/imcd",
	"mi_fifo_mode":          "0660",
	"mi_fifo_group":         "opensips",
	"mi_passthrough":        "all",
	"mi_passthrough_allow":  "usrloc:dump,ul_dump",
	"metrics_listen":        "",
	"log_level":             "debug",
	"log_format":            "json",
	"shutdown_grace":        "3s",
	"command_timeout":       "7s",
	"history":               "off",
	"history_table":         "h_lines",
	"topics_table":          "h_topics",
	"history_marks_table":   "h_marks",
	"history_lines":         "5",
	"history_max":           "50",
	"history_on_join":       "0",
	"catchup_max":           "20",
	"history_keep_lines":    "200",
	"history_max_age":       "24h0m0s",
	"usrloc_events":         "true",
	"usrloc_domain":         "example.com",
	"usrloc_table":          "location2",
	"delivery_path":         "contact",
	"metrics_pprof":         "true",
	"gomaxprocs":            "2",
	"delivery_room_queue":   "500",
	"delivery_rate_max":     "5000",
	"delivery_rate_min":     "50",
	"delivery_rate_step":    "25.5",
	"delivery_burst":        "16",
	"delivery_late_after":   "20ms",
	"delivery_outstanding":  "8192",
	"delivery_shm_share":    "50",
	"opensips_wt_timer":     "2s",
	"delivery_lost_retries": "0",
	"member_inflight":       "2",
	"member_queue":          "50",
	"member_queue_age":      "5m0s",
	"unreachable_retry":     "10s",
	"unreachable_retry_max": "20m0s",
	"ghost_after":           "24h0m0s",
	"ghost_policy":          "remove",

	"event_max_connections":    "4",
	"event_at_max_connections": "close_idle",
	"event_frame_timeout":      "2s",

	"event_source":            "rabbitmq",
	"rabbitmq_url":            "amqp://imcd:pw@10.0.0.9:5673/imcd",
	"rabbitmq_exchange":       "rooms",
	"rabbitmq_shards":         "4",
	"rabbitmq_queue_prefix":   "rooms.q",
	"rabbitmq_queues":         "rooms.q.0,rooms.q.1",
	"rabbitmq_standby_queues": "rooms.q.2,rooms.q.3",
	"rabbitmq_standby_delay":  "5s",
	"rabbitmq_prefetch":       "256",
	"rabbitmq_heartbeat":      "3s",
	"rabbitmq_declare":        "true",
	"rabbitmq_dead_letter":    "rooms.dead",
	"rabbitmq_reroute":        "no",
	"rabbitmq_drain_timeout":  "2s",
	"events_table":            "events2",
	"events_window":           "48h0m0s",

	"canary_interval": "30s",
	"canary_timeout":  "2s",
	"canary_domain":   "example.net",
}

func TestEveryKeyFromFileAndFlag(t *testing.T) {
	keys := Keys()
	if len(sample) != len(keys) {
		t.Fatalf("sample has %d keys, Keys() has %d", len(sample), len(keys))
	}
	var file strings.Builder
	var args []string
	for _, k := range keys {
		v, ok := sample[k.Name]
		if !ok {
			t.Fatalf("no sample value for %s", k.Name)
		}
		if def := Default(); k.Get(&def) == v {
			t.Fatalf("sample value of %s equals the default", k.Name)
		}
		file.WriteString(k.Name + " = \"" + v + "\"\n")
		args = append(args, "-"+k.Name, v)
	}
	cfg, _, err := Load([]string{"-config", writeFile(t, file.String())}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if got := k.Get(&cfg); got != sample[k.Name] {
			t.Errorf("file: %s = %q, want %q", k.Name, got, sample[k.Name])
		}
	}
	cfg, _, err = Load(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if got := k.Get(&cfg); got != sample[k.Name] {
			t.Errorf("flag: %s = %q, want %q", k.Name, got, sample[k.Name])
		}
	}
}

func TestFlagsWinOverFile(t *testing.T) {
	p := writeFile(t, "# comment\nhash_size = 2\nmax_body = 100\n\nlog_level = info\n")
	cfg, _, err := Load([]string{"-hash_size", "5", "-config", p}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HashSize != 5 || cfg.MaxBody != 100 || cfg.LogLevel != LevelInfo {
		t.Fatalf("got hash_size %d max_body %d log_level %s", cfg.HashSize, cfg.MaxBody, cfg.LogLevel)
	}
	if cfg.Shards() != 32 {
		t.Fatalf("Shards() = %d", cfg.Shards())
	}
}

func TestInvalidValues(t *testing.T) {
	f := func(line, want string) {
		t.Helper()
		_, _, err := Load([]string{"-config", writeFile(t, line+"\n")}, &bytes.Buffer{})
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: err %v, want ErrInvalid", line, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: error %q does not contain %q", line, err, want)
		}
	}
	f("hash_size = 42", "hash_size (")
	f("hash_size = 42", "must be between 0 and 10, got 42")
	f("hash_size = four", "not a whole number")
	f("imc_cmd_start_char = ##", "one printable ASCII character")
	f("imc_cmd_start_char = \" \"", "one printable ASCII character")
	f("rooms_table = imc_rooms; DROP TABLE x", "letters, digits and '_'")
	f("create_tables = maybe", "must be yes or no")
	f("event_listen = http://x", "tcp:ip:port")
	f("event_listen = tcp:localhost", "must be ip:port")
	f("opensips_mi = 127.0.0.1:8080", "udp:host:port or unix:/path")
	f("opensips_mi = unix:relative.sock", "must be absolute")
	f("event_sources = 10.0.0.0/8,bogus", `"bogus" is neither`)
	f("event_sources =", "to accept events from any address, say so with *")
	f(`event_sources = ""`, "must name the addresses OpenSIPS sends events from")
	f("event_sources = ,", "must name the addresses")
	f("event_at_max_connections = drop", "must be one of refuse, close_idle")
	f("event_max_connections = 0", "must be between 1 and")
	f("event_frame_timeout = 1ms", "must be at least 100ms")
	f("event_expire = soon", "not a duration")
	f("event_renew = 10m", "shorter than event_expire")
	f("outbound_proxy = 127.0.0.1", "sip: or sips: URI")
	f("outbound_proxy = sip:a>b", "forbidden byte")
	f("proxy_in_order = yes", "needs outbound_proxy")
	f("log_level = loud", "unknown log level")
	f("log_format = xml", "must be one of text, json")
	f("mi_http_path = mi", "must start with '/'")
	f("no_such_key = 1", "unknown key")
	f("just words", "expected key = value")
	f("max_body = 0", "between 1 and 60000")
	f("rate_limit = fast", "messages per second")
	f("rate_limit = -1", "messages per second")
	f("max_event_size = 10", "between 1024")
	f("fanout_limit = -5", "messages per second")
	f("fanout_burst = 0", "between 1")
	f("room_prefix = a b", "characters a SIP user part may hold")
	f("domains = example.com, bad domain", `"bad domain" is not a domain`)
	f("member_domains = a>b", `"a>b" is not a domain`)
	f("mi_http_hosts = *", `"*" is not a domain`)
	f("mi_http_origins = evil.example", "not a web origin")
	f("mi_http_origins = https://a.example/path", "not a web origin")
	f("mi_fifo_mode = 0400", "read and write for the owner")
	f("mi_fifo_mode = 999", "octal permissions")
	f("mi_passthrough = maybe", "must be allowlist, all or no")
	f("mi_passthrough_allow = core:kill; x", "not an MI command name")
	f("opensips_mi = udp:127.0.0.1:8080,127.0.0.1:8081", "udp:host:port or unix:/path")
	f("opensips_mi = ,", "at least one socket")
	f("delivery_window = 256", "delivery_rate_max")
	f("delivery_window = 256", "delivery_outstanding")
	f("delivery_rate_max = 0", "from 1 to")
	f("delivery_rate_min = 20000", "must not exceed delivery_rate_max")
	f("unreachable_retry = 1h", "must not exceed unreachable_retry_max")
	f("ghost_policy = remove", "needs ghost_after")
	f("ghost_policy = forget", "keep, remove")
	f("usrloc_domain = sip:example.com", "a domain")
}

// TestSecureDefaults: what a configuration that says nothing gets.
func TestSecureDefaults(t *testing.T) {
	cfg, _, err := Load([]string{"-data_dir", "/var/lib/imcd"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MIPassthrough != PassthroughAllowlist || !cfg.ForwardsMI() || len(cfg.MIPassthroughAllow) != 0 {
		t.Errorf("mi_passthrough %q allow %q", cfg.MIPassthrough, cfg.MIPassthroughAllow)
	}
	if cfg.MIFIFOPath() != "/var/lib/imcd/imcd_fifo" || cfg.MIFIFOMode != 0o600 || cfg.MIFIFOGroup != "" {
		t.Errorf("FIFO %q mode %v group %q", cfg.MIFIFOPath(), cfg.MIFIFOMode, cfg.MIFIFOGroup)
	}
	if cfg.RoomPrefix != "chat-" || len(cfg.Domains) != 0 || len(cfg.MemberDomains) != 0 {
		t.Errorf("room_prefix %q domains %q member_domains %q", cfg.RoomPrefix, cfg.Domains, cfg.MemberDomains)
	}
	if len(cfg.MIHTTPHosts) != 0 || len(cfg.MIHTTPOrigins) != 0 || cfg.FanoutLimit <= 0 || cfg.FanoutBurst < cfg.MaxMembers {
		t.Errorf("mi_http_hosts %q origins %q fanout %v/%d", cfg.MIHTTPHosts, cfg.MIHTTPOrigins, cfg.FanoutLimit, cfg.FanoutBurst)
	}
	f := func(fifo, want string) {
		t.Helper()
		c := Config{DataDir: "var", MIFIFO: fifo}
		if got := c.MIFIFOPath(); got != want {
			t.Errorf("MIFIFOPath(%q) = %q, want %q", fifo, got, want)
		}
	}
	f("", "")
	f("/run/imcd/imcd_fifo", "/run/imcd/imcd_fifo")
	f("sub/fifo", "var/sub/fifo")
}

// TestPassthroughValues: the old boolean spellings still load; yes means
// the allowlist now (the daemon says so at start), no means no.
func TestPassthroughValues(t *testing.T) {
	f := func(v, want string) {
		t.Helper()
		cfg, _, err := Load([]string{"-config", writeFile(t, "mi_passthrough = "+v+"\n")}, &bytes.Buffer{})
		if err != nil || cfg.MIPassthrough != want {
			t.Errorf("mi_passthrough = %s: %q, %v; want %q", v, cfg.MIPassthrough, err, want)
		}
	}
	f("allowlist", PassthroughAllowlist)
	f("ALL", PassthroughAll)
	f("no", PassthroughNo)
	f("false", PassthroughNo)
	f("0", PassthroughNo)
	f("yes", PassthroughYes)
	f("true", PassthroughYes)
	f("on", PassthroughYes)
	if _, _, err := Load([]string{"-config", writeFile(t, "mi_passthrough = yes\nopensips_mi = \"\"\n")}, &bytes.Buffer{}); err == nil {
		t.Error("mi_passthrough = yes without opensips_mi was accepted")
	}
}

// TestOpenSIPSMIs: opensips_mi lists one or more nodes.
func TestOpenSIPSMIs(t *testing.T) {
	cfg, _, err := Load([]string{"-opensips_mi", " udp:10.0.0.1:8080 , unix:/run/opensips/mi.sock"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.OpenSIPSMIs(); len(got) != 2 || got[0] != "udp:10.0.0.1:8080" || got[1] != "unix:/run/opensips/mi.sock" {
		t.Fatalf("OpenSIPSMIs() = %q", got)
	}
	def := Default()
	if got := def.OpenSIPSMIs(); len(got) != 1 || got[0] != "udp:127.0.0.1:8080" {
		t.Fatalf("default OpenSIPSMIs() = %q", got)
	}
}

func TestInvalidFlag(t *testing.T) {
	var out bytes.Buffer
	_, _, err := Load([]string{"-hash_size", "99"}, &out)
	if err == nil || !strings.Contains(err.Error(), "must be between 0 and 10") {
		t.Fatalf("err %v", err)
	}
}

func TestDurationsAcceptPlainSeconds(t *testing.T) {
	cfg, _, err := Load([]string{"-event_expire", "3600"}, &bytes.Buffer{})
	if err != nil || cfg.SubscribeExpire != time.Hour {
		t.Fatalf("%v %v", cfg.SubscribeExpire, err)
	}
}

func TestLevels(t *testing.T) {
	f := func(in string, want Level) {
		t.Helper()
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Fatalf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("notice", LevelNotice)
	f("WARN", LevelWarn)
	f("-1", LevelError)
	f("4", LevelDebug)
	f("alert", LevelAlert)
	if _, err := ParseLevel("0"); err == nil {
		t.Fatal("0 is not an OpenSIPS level")
	}
	if LevelDebug.Slog() >= LevelInfo.Slog() || LevelInfo.Slog() >= LevelNotice.Slog() || LevelNotice.Slog() >= LevelWarn.Slog() {
		t.Fatal("slog levels out of order")
	}
}

func TestHelpListsEveryKey(t *testing.T) {
	var out bytes.Buffer
	if _, _, err := Load([]string{"-help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, k := range Keys() {
		if !strings.Contains(out.String(), "-"+k.Name) {
			t.Errorf("--help does not list %s", k.Name)
		}
	}
}

// TestReferenceDocumentsEveryKey fails when docs/configuration.md lacks a
// section for a key.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !regexp.MustCompile("(?m)^### `" + regexp.QuoteMeta(k.Name) + "`").Match(doc) {
			t.Errorf("docs/configuration.md has no section ### `%s`", k.Name)
		}
	}
}

// TestShippedConfigParses keeps scripts/imcd.conf loadable.
func TestShippedConfigParses(t *testing.T) {
	cfg, _, err := Load([]string{"-config", "../../scripts/imcd.conf"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	// The Debian package installs it as /etc/imcd/imcd.conf: the embedded
	// SQLite database in /var/lib/imcd, the FIFO in /run/imcd.
	if cfg.DBURL != "" || cfg.DataDir != "/var/lib/imcd" || cfg.EventListen != "tcp:127.0.0.1:9998" || cfg.MIFIFO != "/run/imcd/imcd_fifo" {
		t.Fatalf("unexpected values: %+v", cfg)
	}
}

func TestSockets(t *testing.T) {
	f := func(listen, wantNetwork, wantAddr string) {
		t.Helper()
		c := Config{EventListen: listen, MIDatagram: listen}
		if a := c.EventAddress(); a.Network != wantNetwork || a.Addr != wantAddr {
			t.Fatalf("EventAddress(%q) = %+v", listen, a)
		}
		if a := c.MIDatagramAddress(); wantNetwork != "tcp" && (a.Network != wantNetwork || a.Addr != wantAddr) {
			t.Fatalf("MIDatagramAddress(%q) = %+v", listen, a)
		}
	}
	f("tcp:127.0.0.1:9998", "tcp", "127.0.0.1:9998")
	f("udp:127.0.0.1:9999", "udp", "127.0.0.1:9999")
	f("unix:/run/imcd/ev.sock", "unixgram", "/run/imcd/ev.sock")
}

// TestEventSources: an empty event_sources, which used to accept events
// from any address without a word, is refused; * says so explicitly.
func TestEventSources(t *testing.T) {
	cfg, _, err := Load([]string{"-config", writeFile(t, "event_sources = *\n")}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.AcceptsAnySource() || len(cfg.EventSources) != 2 {
		t.Fatalf("event_sources = * gave %v", cfg.EventSources)
	}
	for _, k := range Keys() {
		if k.Name == "event_sources" && k.Get(&cfg) != "*" {
			t.Fatalf("written back as %q", k.Get(&cfg))
		}
	}
	if d := Default(); d.AcceptsAnySource() {
		t.Fatal("the default accepts any source")
	}
	// The flag as well as the file.
	if _, _, err := Load([]string{"-event_sources", ""}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "say so with *") {
		t.Fatalf("-event_sources '': %v", err)
	}
	// And a configuration built in code.
	c := Default()
	c.EventSources = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "event_sources") {
		t.Fatalf("Validate with no sources: %v", err)
	}
}

// TestActions: -version reads no file (a broken one does not hide the
// version); -check reads and validates everything, as a start would.
func TestActions(t *testing.T) {
	cmd, err := Parse([]string{"-version", "-config", "/nonexistent/imcd.conf"}, &bytes.Buffer{})
	if err != nil || cmd.Action != ActionVersion {
		t.Fatalf("-version: %+v, %v", cmd.Action, err)
	}
	cmd, err = Parse([]string{"-check", "-hash_size", "3"}, &bytes.Buffer{})
	if err != nil || cmd.Action != ActionCheck || cmd.Config.HashSize != 3 {
		t.Fatalf("-check: %+v, %v", cmd, err)
	}
	if _, err := Parse([]string{"-check", "-config", "/nonexistent/imcd.conf"}, &bytes.Buffer{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("-check of a missing file: %v", err)
	}
	if cmd, err := Parse(nil, &bytes.Buffer{}); err != nil || cmd.Action != ActionRun {
		t.Fatalf("no flag: %+v, %v", cmd.Action, err)
	}
}

// TestCanary: the probes' URIs come from canary_domain, else the first of
// domains, else each node's MI host; a node without one (a unix socket)
// needs canary_domain, or the canary off.
func TestCanary(t *testing.T) {
	f := func(lines, mi, wantFrom, wantTo string) {
		t.Helper()
		cfg, _, err := Load([]string{"-config", writeFile(t, lines)}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%q: %v", lines, err)
		}
		from, to, err := cfg.CanaryURIs(mi)
		if err != nil || from.String() != wantFrom || to.String() != wantTo {
			t.Errorf("%q through %s: %s → %s, %v; want %s → %s", lines, mi, from, to, err, wantFrom, wantTo)
		}
	}
	f("", "udp:127.0.0.1:8080", "sip:imcd-canary@127.0.0.1", "sip:chat-manager@127.0.0.1")
	f("opensips_mi = udp:10.0.0.1:8080, udp:[::1]:8080\n", "udp:[::1]:8080", "sip:imcd-canary@[::1]", "sip:chat-manager@[::1]")
	f("opensips_mi = udp:sip.example.com:8080\nmanager_user = rooms\n", "udp:sip.example.com:8080", "sip:imcd-canary@sip.example.com", "sip:rooms@sip.example.com")
	f("domains = example.com, example.org\n", "udp:127.0.0.1:8080", "sip:imcd-canary@example.com", "sip:chat-manager@example.com")
	f("domains = *\ncanary_domain = example.net\n", "udp:127.0.0.1:8080", "sip:imcd-canary@example.net", "sip:chat-manager@example.net")
	// Without a manager, a name the script's route takes for a room.
	f("manager_user =\n", "udp:127.0.0.1:8080", "sip:imcd-canary@127.0.0.1", "sip:chat-imcd-canary@127.0.0.1")

	bad := func(lines, key string) {
		t.Helper()
		_, _, err := Load([]string{"-config", writeFile(t, lines)}, &bytes.Buffer{})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v, want an error naming %s", lines, err, key)
		}
	}
	bad("canary_interval = 10ms\n", "canary_interval")
	bad("canary_domain = a b\n", "canary_domain")
	// A unix socket has no host: such a node needs canary_domain (or
	// domains) to be watched, but its configuration still loads.
	cfg, _, err := Load([]string{"-config", writeFile(t, "opensips_mi = unix:/run/opensips/mi.sock\n")}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cfg.CanaryURIs("unix:/run/opensips/mi.sock"); err == nil || !strings.Contains(err.Error(), "canary_domain") {
		t.Errorf("probes through a unix socket without a domain: %v", err)
	}
	f("opensips_mi = unix:/run/opensips/mi.sock\ncanary_domain = example.com\n", "unix:/run/opensips/mi.sock", "sip:imcd-canary@example.com", "sip:chat-manager@example.com")
	if d := Default(); !d.CanaryOn() || d.Canary.Interval != 10*time.Second || d.Canary.Timeout != 5*time.Second {
		t.Errorf("default canary %+v", d.Canary)
	}
}
