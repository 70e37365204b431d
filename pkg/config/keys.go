package config

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// Key is one configuration key: its name (in the file and as a flag), what
// it means, and how it reads and writes a Config.
type Key struct {
	Name  string
	Usage string
	set   func(c *Config, v string) error
	get   func(c *Config) string
}

// Get returns the key's value in c, formatted as it would be written.
func (k Key) Get(c *Config) string { return k.get(c) }

// Set parses v into c.
func (k Key) Set(c *Config, v string) error { return k.set(c, v) }

// Keys returns every configuration key, in the order of the reference.
func Keys() []Key {
	keys := []Key{
		// Database (the imc module's names).
		str("db_url", "database URL in OpenSIPS's grammar: mysql://user:pass@host[:port]/db, postgres://user:pass@host[:port]/db, sqlite:///abs/path.db; empty = embedded SQLite file data_dir/imcd.db",
			func(c *Config) *string { return &c.DBURL }, nil),
		str("data_dir", "directory of the embedded SQLite database (used when db_url is empty)",
			func(c *Config) *string { return &c.DataDir }, nonEmpty),
		str("rooms_table", "name of the rooms table", func(c *Config) *string { return &c.RoomsTable }, identifier),
		str("members_table", "name of the members table", func(c *Config) *string { return &c.MembersTable }, identifier),
		str("bans_table", "name of imcd's table of the users banned from rooms (#ban)", func(c *Config) *string { return &c.BansTable }, identifier),
		str("moderation_table", "name of imcd's table of moderated rooms and members with voice (#moderate, #voice)",
			func(c *Config) *string { return &c.ModerationTable }, identifier),
		boolean("create_tables", "create missing tables (and version rows) at start; always done for the embedded SQLite default",
			func(c *Config) *bool { return &c.CreateTables }),

		// Rooms.
		integer("hash_size", "power of 2 of the number of room shards (each a goroutine owning its rooms)", 0, 10,
			func(c *Config) *int { return &c.HashSize }),
		{Name: "imc_cmd_start_char", Usage: "character that starts a command in a MESSAGE body",
			get: func(c *Config) string { return string(c.StartChar) },
			set: func(c *Config, v string) error {
				if len(v) != 1 || v[0] <= ' ' || v[0] >= 0x7f {
					return fmt.Errorf("must be one printable ASCII character, got %q", v)
				}
				c.StartChar = v[0]
				return nil
			}},
		integer("max_body", "largest chat text relayed to a room, in bytes; longer lines are refused with a reply", 1, 60000,
			func(c *Config) *int { return &c.MaxBody }),
		boolean("create_on_join", "#join of a missing room creates it with the sender as owner (native behaviour)",
			func(c *Config) *bool { return &c.CreateOnJoin }),
		str("manager_user", "user part of the room manager URI (sip:chat-manager@domain): commands sent there name their room; empty = every request URI is a room",
			func(c *Config) *string { return &c.ManagerUser }, nil),
		str("outbound_proxy", "SIP URI used as next hop (t_uac_dlg next_hop) for every MESSAGE imcd sends; empty = none",
			func(c *Config) *string { return &c.OutboundProxy }, orEmpty(sipURI)),
		boolean("proxy_in_order", "outbound_proxy is a socket of OpenSIPS served by one worker (use_workers 1), so MESSAGEs through it leave in the order imcd sent them: several of a room may be in flight to a member at once instead of one (docs/delivery.md, Order)",
			func(c *Config) *bool { return &c.ProxyInOrder }),
		integer("shard_queue", "requests that may wait for one shard before new ones are refused", 16, 1<<20,
			func(c *Config) *int { return &c.ShardQueue }),
		duration("command_timeout", "longest a command waits for the database (behind another command of its room, or for a database that stopped answering) before it is answered 'try again later' with nothing attempted; chat lines never wait for the database", 100*time.Millisecond,
			func(c *Config) *time.Duration { return &c.CommandTimeout }),
		integer("max_members", "members one room may have, pending invitees included; 0 = no limit", 0, 1<<20,
			func(c *Config) *int { return &c.MaxMembers }),
		integer("max_rooms_per_user", "rooms one user may own (create); 0 = no limit; operator commands are not limited", 0, 1<<20,
			func(c *Config) *int { return &c.MaxOwnedRooms }),

		// Room and member policy.
		str("room_prefix", "what the name of a new room must start with (case-sensitive), as OpenSIPS's route to imcd matches it (^sip:chat-); empty = any name",
			func(c *Config) *string { return &c.RoomPrefix }, orEmpty(roomPrefix)),
		list("domains", "comma-separated domains new rooms may be in; empty = the domain the command was sent to (the request URI's host); * = any",
			func(c *Config) *[]string { return &c.Domains }, domainOrAny),
		list("member_domains", "comma-separated domains, besides the room's own, that #invite and #add may bring members from; empty = the room's domain only; * = any",
			func(c *Config) *[]string { return &c.MemberDomains }, domainOrAny),

		// History and topics.
		str("history", "keep the rooms' chat lines and topics (#history, #topic, the last lines for a new member): auto = on when the history tables exist or imcd creates them (the embedded SQLite default, create_tables = yes), else off with a notice; on = required (start fails without the tables); off = nothing of the chat is stored (a privacy choice)",
			func(c *Config) *string { return &c.History }, oneOf(HistoryAuto, HistoryOn, HistoryOff)),
		str("history_table", "name of the table of the rooms' chat lines", func(c *Config) *string { return &c.HistoryTable }, identifier),
		str("topics_table", "name of the table of the rooms' topics", func(c *Config) *string { return &c.TopicsTable }, identifier),
		str("history_marks_table", "name of the table of each unreachable member's last delivered line, for catch-up", func(c *Config) *string { return &c.MarksTable }, identifier),
		integer("history_lines", "lines #history gives when it names no number", 1, 10000,
			func(c *Config) *int { return &c.HistoryLines }),
		integer("history_max", "most lines #history gives", 1, 10000,
			func(c *Config) *int { return &c.HistoryMax }),
		integer("history_on_join", "lines a new member gets on #join, #accept or #add, after the topic; 0 = none", 0, 10000,
			func(c *Config) *int { return &c.HistoryOnJoin }),
		integer("catchup_max", "most of the lines a member missed while unreachable that they get from the history when they are back, after a first line saying how many were said and how many are left out; 0 = none (they are told how many messages they missed)", 0, 10000,
			func(c *Config) *int { return &c.CatchUpMax }),
		integer("history_keep_lines", "lines kept per room; older ones are purged in the background, at start and every 5 minutes; 0 = no count limit", 0, 1<<30,
			func(c *Config) *int { return &c.HistoryKeepLines }),
		duration("history_max_age", "age after which a line is purged in the background, at start and every 5 minutes; 0 = no age limit", 0,
			func(c *Config) *time.Duration { return &c.HistoryMaxAge }),

		// Flood control.
		rate("rate_limit", "MESSAGEs per second one sender may send (token bucket, commands and chat alike); over it the sender is told once and the rest dropped; 0 = off",
			func(c *Config) *float64 { return &c.RateLimit }),
		integer("rate_burst", "MESSAGEs one sender may send at once before rate_limit applies", 1, 1<<20,
			func(c *Config) *int { return &c.RateBurst }),
		rate("fanout_limit", "MESSAGEs per second one sender's requests may make imcd send (a line into a room of 1,000 is 999); over it the sender is told once and dropped until the budget refills; 0 = off",
			func(c *Config) *float64 { return &c.FanoutLimit }),
		integer("fanout_burst", "MESSAGEs one sender's requests may make imcd send at once before fanout_limit applies", 1, 1<<24,
			func(c *Config) *int { return &c.FanoutBurst }),
		duration("dedup_window", "an event with the Call-ID, CSeq and From tag of one seen within this window is a retransmission and is applied once; 0 = off", 0,
			func(c *Config) *time.Duration { return &c.DedupWindow }),
		integer("max_event_size", "largest event_stream frame accepted, in bytes (an event_datagram is at most 65535 by nature); larger frames close the connection", 1024, 16<<20,
			func(c *Config) *int { return &c.MaxEventSize }),

		// OpenSIPS.
		str("opensips_mi", "OpenSIPS's mi_datagram sockets, where imcd sends t_uac_dlg and event_subscribe: udp:host:port or unix:/path; several equivalent OpenSIPS nodes comma-separated (deliveries are spread over them, each is subscribed)",
			func(c *Config) *string { return &c.OpenSIPSMI }, miAddrList),
		str("event_name", "name of the event the OpenSIPS script raises for each MESSAGE",
			func(c *Config) *string { return &c.EventName }, nonEmpty),
		str("event_listen", "where imcd receives events: tcp:ip:port (event_stream, default), udp:ip:port or unix:/path (event_datagram)",
			func(c *Config) *string { return &c.EventListen }, eventAddr),
		str("event_socket", "socket OpenSIPS is told to send events to (event_subscribe); empty = event_listen",
			func(c *Config) *string { return &c.EventSocket }, orEmpty(eventAddr)),
		{Name: "event_sources", Usage: "comma-separated addresses or prefixes events are accepted from; others are dropped and counted; * = any address (logged as a warning at start); empty is refused",
			get: func(c *Config) string {
				if c.AcceptsAnySource() {
					return AnySource
				}
				s := make([]string, len(c.EventSources))
				for i, p := range c.EventSources {
					s[i] = p.String()
				}
				return strings.Join(s, ",")
			},
			set: func(c *Config, v string) error {
				if strings.TrimSpace(v) == AnySource {
					c.EventSources = anySource()
					return nil
				}
				var ps []netip.Prefix
				for _, f := range strings.Split(v, ",") {
					f = strings.TrimSpace(f)
					if f == "" {
						continue
					}
					p, err := netip.ParsePrefix(f)
					if err != nil {
						a, aerr := netip.ParseAddr(f)
						if aerr != nil {
							return fmt.Errorf("%q is neither an address nor a prefix", f)
						}
						p = netip.PrefixFrom(a, a.BitLen())
					}
					ps = append(ps, p)
				}
				if len(ps) == 0 {
					return errNoSources
				}
				c.EventSources = ps
				return nil
			}},
		integer("event_max_connections", "event_stream connections open at once (OpenSIPS opens one per node, and an old one may linger after a restart); see event_at_max_connections", 1, 1<<16,
			func(c *Config) *int { return &c.EventMaxConns }),
		str("event_at_max_connections", "what one more event_stream connection gets at event_max_connections: refuse (it is closed; those open stay) or close_idle (the connection that has sent nothing for the longest is closed for it; refused when every one is in the middle of an event)",
			func(c *Config) *string { return &c.EventAtMaxConns }, oneOf(opensips.AtMaxRefuse, opensips.AtMaxCloseIdle)),
		duration("event_frame_timeout", "longest an event_stream event may take from its first byte to its last; a connection holding an unfinished one longer is closed (a quiet connection between events is not)", 100*time.Millisecond,
			func(c *Config) *time.Duration { return &c.EventFrameTimeout }),
		boolean("event_subscribe", "imcd subscribes itself with MI event_subscribe and keeps renewing; off when the script subscribes in startup_route",
			func(c *Config) *bool { return &c.Subscribe }),
		duration("event_expire", "expire given to event_subscribe", time.Second,
			func(c *Config) *time.Duration { return &c.SubscribeExpire }),
		duration("event_renew", "how often the subscription is renewed (also how fast a restarted OpenSIPS is healed)", 100*time.Millisecond,
			func(c *Config) *time.Duration { return &c.SubscribeRenew }),
		duration("delivery_timeout", "how long to wait for a t_uac_dlg final reply before the request counts as lost; must exceed OpenSIPS tm's fr_timeout (fr_timeout + 3s)", time.Second,
			func(c *Config) *time.Duration { return &c.DeliveryTimeout }),
		boolean("usrloc_events", "subscribe OpenSIPS's usrloc events E_UL_AOR_INSERT, E_UL_CONTACT_INSERT and E_UL_CONTACT_UPDATE on the event socket, so that a member who registers again gets what was kept for them at once (needs the usrloc module; with event_subscribe off the script subscribes them)",
			func(c *Config) *bool { return &c.UsrlocEvents }),
		str("usrloc_domain", "domain added to a usrloc AOR that has none (usrloc's use_domain off); empty = such events are ignored",
			func(c *Config) *string { return &c.UsrlocDomain }, hostOrEmpty),
		str("usrloc_table", "usrloc's table (its \"domain\"), where delivery_path = contact looks members up with ul_show_contact",
			func(c *Config) *string { return &c.UsrlocTable }, identifier),

		// Delivery path (docs/delivery.md).
		str("delivery_path", "where a member's MESSAGEs are sent: proxy (to their address of record, which OpenSIPS's script looks up and relays: the script sees every MESSAGE, two transactions each) or contact (straight to their one registered contact, learnt from usrloc: one transaction, order kept; the script does not see them)",
			func(c *Config) *string { return &c.DeliveryPath }, oneOf(PathProxy, PathContact)),

		// Delivery (docs/delivery.md).
		integer("delivery_queue", "notices held in all (waiting, kept for away members, in flight) before a chat line's fan-out is refused and its sender told the room is busy", 64, 1<<24,
			func(c *Config) *int { return &c.DeliveryQueue }),
		integer("delivery_room_queue", "fan-out notices of one room waiting before its lines are refused as busy (a room's first line is always taken)", 16, 1<<24,
			func(c *Config) *int { return &c.DeliveryRoomQueue }),
		number("delivery_rate_max", "ceiling of the t_uac_dlg write rate to each OpenSIPS, requests per second; the rate adapts (AIMD) below it and starts at a fifth of it", 1, 1e6,
			func(c *Config) *float64 { return &c.DeliveryRateMax }),
		number("delivery_rate_min", "floor of the adaptive write rate, requests per second", 1, 1e6,
			func(c *Config) *float64 { return &c.DeliveryRateMin }),
		number("delivery_rate_step", "additive increase of the write rate per 100 ms while OpenSIPS keeps up, requests per second; 0 = delivery_rate_max / 100", 0, 1e6,
			func(c *Config) *float64 { return &c.DeliveryRateStep }),
		integer("delivery_burst", "most t_uac_dlg requests written back to back to one OpenSIPS; keep it well below what its MI socket buffer holds (about 125 requests at the default 212 KB)", 1, 1<<16,
			func(c *Config) *int { return &c.DeliveryBurst }),
		duration("delivery_late_after", "how much later than each member's usual reply time even the promptest reply of a 100 ms interval must come for the write rate to be cut by a fifth (OpenSIPS's MI queue is growing); keep it below what OpenSIPS's MI socket buffer holds, in time (buffer requests / MI rate)", time.Millisecond,
			func(c *Config) *time.Duration { return &c.DeliveryLateAfter }),
		integer("delivery_outstanding", "most transactions imcd may keep alive in each OpenSIPS (awaiting their final reply, or on wait for opensips_wt_timer after it); 0 = as many as fit in delivery_shm_share of its shared memory (32768 while that cannot be read)", 0, 1<<24,
			func(c *Config) *int { return &c.DeliveryOutstanding }),
		integer("delivery_shm_share", "percent of each OpenSIPS's shared memory (-m) that imcd's transactions may fill, read with get_statistics every 250 ms: what OpenSIPS uses for anything else leaves imcd less; 0 = do not read it (then size delivery_outstanding by hand)", 0, 90,
			func(c *Config) *int { return &c.DeliveryShmShare }),
		duration("opensips_wt_timer", "OpenSIPS tm's wt_timer: how long a completed transaction stays in its memory; 0 counts only the transactions awaiting their reply", 0,
			func(c *Config) *time.Duration { return &c.OpenSIPSWaitTime }),
		integer("delivery_lost_retries", "times a t_uac_dlg request OpenSIPS never answered is written again (only while that cannot reorder a room's lines); 0 = never", 0, 100,
			func(c *Config) *int { return &c.DeliveryLostRetries }),
		integer("member_inflight", "most requests in flight to one member: what a member who never answers ties up for fr_timeout", 1, 1<<16,
			func(c *Config) *int { return &c.MemberInflight }),
		integer("member_queue", "most notices kept for one unreachable member, all rooms; beyond it the oldest are dropped and counted, and the member is told how many they missed", 1, 1<<20,
			func(c *Config) *int { return &c.MemberQueue }),
		duration("member_queue_age", "oldest notice kept for an unreachable member", time.Second,
			func(c *Config) *time.Duration { return &c.MemberQueueAge }),
		duration("unreachable_retry", "first retry of an unreachable member's oldest kept notice when no registration brought them back; the wait doubles", 100*time.Millisecond,
			func(c *Config) *time.Duration { return &c.UnreachableRetry }),
		duration("unreachable_retry_max", "longest wait between retries of an unreachable member", 100*time.Millisecond,
			func(c *Config) *time.Duration { return &c.UnreachableRetryMax }),
		duration("ghost_after", "a member unreachable this long is a ghost, handled by ghost_policy; 0 = off", 0,
			func(c *Config) *time.Duration { return &c.GhostAfter }),
		str("ghost_policy", "what happens to a ghost: keep (logged) or remove (removed from their rooms, with a notice to each room)",
			func(c *Config) *string { return &c.GhostPolicy }, oneOf(GhostKeep, GhostRemove)),
	}
	keys = append(keys, rabbitmqKeys()...) // the event source and RabbitMQ mode (rabbitmq.go)
	keys = append(keys, canaryKeys()...)   // canary.go
	return append(keys, []Key{

		// imcd's MI.
		str("mi_datagram", "imcd's own MI over datagrams (what opensips-cli communication_type=datagram talks to): udp:ip:port or unix:/path; empty = off",
			func(c *Config) *string { return &c.MIDatagram }, orEmpty(miAddr)),
		str("mi_http", "address of imcd's own MI over HTTP (ip:port); empty = off",
			func(c *Config) *string { return &c.MIHTTP }, orEmpty(sockets.CheckHostPort)),
		str("mi_http_path", "URL path of the MI over HTTP", func(c *Config) *string { return &c.MIHTTPPath }, path),
		list("mi_http_hosts", "comma-separated host names an HTTP MI request's Host may give besides the address it came in on (and localhost); others are refused (DNS rebinding)",
			func(c *Config) *[]string { return &c.MIHTTPHosts }, domain),
		list("mi_http_origins", "comma-separated web origins (https://host[:port]) whose pages may call the HTTP MI; a request with any other Origin is refused",
			func(c *Config) *[]string { return &c.MIHTTPOrigins }, origin),
		str("mi_fifo", "path of imcd's own MI FIFO (mi_fifo protocol), taken in data_dir when relative; empty = off",
			func(c *Config) *string { return &c.MIFIFO }, nil),
		str("mi_fifo_reply_dir", "directory of the reply FIFOs; empty = the FIFO's directory",
			func(c *Config) *string { return &c.MIFIFOReplyDir }, nil),
		{Name: "mi_fifo_mode", Usage: "permissions of the MI FIFO, in octal; imcd's user needs read and write",
			get: func(c *Config) string { return fmt.Sprintf("%04o", uint32(c.MIFIFOMode.Perm())) },
			set: func(c *Config, v string) error {
				m, err := strconv.ParseUint(v, 8, 32)
				if err != nil || m > 0o777 || m&0o600 != 0o600 {
					return fmt.Errorf("must be octal permissions from 0600 to 0777 with read and write for the owner, got %q", v)
				}
				c.MIFIFOMode = os.FileMode(m)
				return nil
			}},
		str("mi_fifo_group", "group (name or number) the MI FIFO is given, for mi_fifo_mode 0660; empty = imcd's own",
			func(c *Config) *string { return &c.MIFIFOGroup }, nil),
		{Name: "mi_passthrough", Usage: "which MI commands imcd does not own are passed to OpenSIPS (opensips_mi): allowlist (read-only ones), all, or no; yes (the old boolean) is read as allowlist",
			get: func(c *Config) string { return c.MIPassthrough },
			set: func(c *Config, v string) error {
				switch strings.ToLower(v) {
				case PassthroughAllowlist:
					c.MIPassthrough = PassthroughAllowlist
				case PassthroughAll:
					c.MIPassthrough = PassthroughAll
				case "no", "off", "false", "0", "none":
					c.MIPassthrough = PassthroughNo
				case "yes", "on", "true", "1":
					c.MIPassthrough = PassthroughYes
				default:
					return fmt.Errorf("must be allowlist, all or no, got %q", v)
				}
				return nil
			}},
		list("mi_passthrough_allow", "comma-separated OpenSIPS MI commands passed through besides the allowlist's",
			func(c *Config) *[]string { return &c.MIPassthroughAllow }, miCommand),

		// Operations.
		boolean("metrics_pprof", "also serve Go's profiles (/debug/pprof/) on metrics_listen, to see where imcd spends its time; a profile shows what imcd is doing: keep metrics_listen on loopback",
			func(c *Config) *bool { return &c.MetricsPprof }),
		integer("gomaxprocs", "CPUs imcd runs Go code on at once; 1, the default, spares an I/O-bound daemon the cost of handing each event between threads (docs/benchmarks.md); 0 = every CPU; the GOMAXPROCS environment variable, when set, wins", 0, 1024,
			func(c *Config) *int { return &c.GOMAXPROCS }),
		str("metrics_listen", "address of the HTTP server for /metrics, /healthz and /readyz; empty = off",
			func(c *Config) *string { return &c.MetricsListen }, orEmpty(sockets.CheckHostPort)),
		{Name: "log_level", Usage: "alert, crit, error, warn, notice, info or debug (or OpenSIPS's numbers -3..4); reloaded on SIGHUP",
			get: func(c *Config) string { return c.LogLevel.String() },
			set: func(c *Config, v string) error {
				l, err := ParseLevel(v)
				if err != nil {
					return err
				}
				c.LogLevel = l
				return nil
			}},
		str("log_format", "text or json", func(c *Config) *string { return &c.LogFormat }, oneOf("text", "json")),
		duration("shutdown_grace", "how long a stop waits for queued requests and in-flight deliveries", 0,
			func(c *Config) *time.Duration { return &c.ShutdownGrace }),
	}...)
}

func rate(name, usage string, field func(*Config) *float64) Key {
	return Key{Name: name, Usage: usage,
		get: func(c *Config) string { return strconv.FormatFloat(*field(c), 'g', -1, 64) },
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1e6 {
				return fmt.Errorf("must be a number of messages per second from 0 to 1000000, got %q", v)
			}
			*field(c) = f
			return nil
		}}
}

// list is a comma-separated list; blanks around items and empty items are
// dropped, and each item is checked.
func list(name, usage string, field func(*Config) *[]string, check func(string) error) Key {
	return Key{Name: name, Usage: usage,
		get: func(c *Config) string { return strings.Join(*field(c), ",") },
		set: func(c *Config, v string) error {
			var items []string
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item == "" {
					continue
				}
				if err := check(item); err != nil {
					return err
				}
				items = append(items, item)
			}
			*field(c) = items
			return nil
		}}
}

func str(name, usage string, field func(*Config) *string, check func(string) error) Key {
	return Key{Name: name, Usage: usage,
		get: func(c *Config) string { return *field(c) },
		set: func(c *Config, v string) error {
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		}}
}

func integer(name, usage string, lo, hi int, field func(*Config) *int) Key {
	return Key{Name: name, Usage: usage,
		get: func(c *Config) string { return strconv.Itoa(*field(c)) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not a whole number: %q", v)
			}
			if n < lo || n > hi {
				return fmt.Errorf("must be between %d and %d, got %d", lo, hi, n)
			}
			*field(c) = n
			return nil
		}}
}

func number(name, usage string, lo, hi float64, field func(*Config) *float64) Key {
	return Key{Name: name, Usage: usage,
		get: func(c *Config) string { return strconv.FormatFloat(*field(c), 'g', -1, 64) },
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < lo || f > hi {
				return fmt.Errorf("must be a number from %g to %g, got %q", lo, hi, v)
			}
			*field(c) = f
			return nil
		}}
}

func boolean(name, usage string, field func(*Config) *bool) Key {
	return Key{Name: name, Usage: usage,
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) },
		set: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "1", "yes", "on", "true":
				*field(c) = true
			case "0", "no", "off", "false":
				*field(c) = false
			default:
				return fmt.Errorf("must be yes or no (also true/false, on/off, 1/0), got %q", v)
			}
			return nil
		}}
}

func duration(name, usage string, min time.Duration, field func(*Config) *time.Duration) Key {
	return Key{Name: name, Usage: usage,
		get: func(c *Config) string { return field(c).String() },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				if n, nerr := strconv.Atoi(v); nerr == nil {
					d = time.Duration(n) * time.Second // OpenSIPS style: plain seconds
				} else {
					return fmt.Errorf("not a duration (like 10s, 2m, or plain seconds): %q", v)
				}
			}
			if d < min {
				return fmt.Errorf("must be at least %s, got %s", min, d)
			}
			*field(c) = d
			return nil
		}}
}
