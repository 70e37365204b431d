package imc

import (
	"slices"
	"strings"
)

// Config is the engine's configuration; field names follow the native
// module's parameters where one exists.
type Config struct {
	// StartChar is imc_cmd_start_char: a body starting with it is a command.
	// Zero means '#'.
	StartChar byte
	// MaxBody is the largest chat text, in bytes, that is relayed (after the
	// "##" escape is undone). Zero or less: no limit.
	MaxBody int
	// CreateOnJoin makes #join of a missing room create it (native behaviour).
	CreateOnJoin bool
	// ManagerUser is the user part of the room manager URI ("chat-manager"):
	// MESSAGEs to it are commands about a room named in an argument, never a
	// room of their own, and no room may take its name. Empty: every request
	// URI is a room, as natively.
	ManagerUser string
	// MaxRoomsListed caps the lines of a #rooms reply. Zero or less: no cap.
	MaxRoomsListed int
	// MaxMembers caps the members of one room, pending invitees included;
	// joins, invitations and additions beyond it are refused. Zero: no cap.
	MaxMembers int
	// MaxOwnedRooms caps the rooms one user may own; #create (and a #join
	// that creates) beyond it is refused. Zero: no cap. Operator actions
	// from the MI are not capped.
	MaxOwnedRooms int

	// RoomPrefix is what the user part of a new room must start with,
	// compared case-sensitively as OpenSIPS's route to imcd compares it:
	// "chat-" for the script's `$ru =~ "^sip:chat-"`. A room outside the
	// route could never be reached by its members; it would only be good
	// for sending MESSAGEs from an address of the sender's choosing.
	// Empty: any name (the native module's behaviour).
	RoomPrefix string
	// Domains are the domains new rooms may be in. Empty: a SIP command
	// may create rooms only in the domain it was sent to (its request
	// URI's host), and an operator's imc:create_room in any domain.
	// AnyDomain among them: any domain.
	Domains []string
	// MemberDomains are the domains, besides the room's own, that #invite
	// and #add (and the operator's imc:add_member and imc:create_room)
	// may bring members from. Empty: the room's domain only. AnyDomain
	// among them: any domain (the native module's behaviour).
	MemberDomains []string

	// History: the rooms keep their chat lines and topics (the caller
	// stores Result.Record and Result.Topic and answers Result.History);
	// #history and #topic work, and a new member gets the topic and the
	// last HistoryOnJoin lines.
	History bool
	// HistoryDefault and HistoryMax are #history's count when none is
	// given, and the most it gives.
	HistoryDefault, HistoryMax int
	// HistoryOnJoin is how many lines a new member gets; 0: none.
	HistoryOnJoin int
	// CatchUpMax is the most lines a member who was unreachable gets from
	// the history of what they missed (CatchUpQuery); 0: none.
	CatchUpMax int
}

// AnyDomain in Config.Domains or Config.MemberDomains lifts that limit.
const AnyDomain = "*"

// DefaultConfig returns the defaults: '#', 1023-byte chat lines (the native
// module refuses 1024 and more), create on join, manager "chat-manager",
// 50 rooms listed, new rooms named "chat-…" in the domain the command was
// sent to, members from the room's domain; #history gives 20 lines (at
// most 100), a new member gets 10, a member back from being unreachable
// at most 50 of those they missed.
func DefaultConfig() Config {
	return Config{StartChar: '#', MaxBody: 1023, CreateOnJoin: true, ManagerUser: "chat-manager", MaxRoomsListed: 50,
		HistoryDefault: 20, HistoryMax: 100, HistoryOnJoin: 10, CatchUpMax: 50,
		RoomPrefix: "chat-"}
}

// Engine applies the IMC rules. It holds only configuration and texts
// derived from it, never changes after NewEngine, and so is shared by every
// shard.
type Engine struct {
	cfg  Config
	sc   string // the start character as a string, for reply texts
	help string // the #help reply, built once
}

// NewEngine returns an engine with cfg.
func NewEngine(cfg Config) *Engine {
	if cfg.StartChar == 0 {
		cfg.StartChar = '#'
	}
	sc := string([]byte{cfg.StartChar})
	cfg.Domains = slices.Clone(cfg.Domains)
	cfg.MemberDomains = slices.Clone(cfg.MemberDomains)
	help := nativeHelp + imcdHelp
	if cfg.History {
		help += historyHelp
	}
	help += moderationHelp
	if cfg.HistoryMax <= 0 {
		cfg.HistoryMax = DefaultConfig().HistoryMax
	}
	if cfg.HistoryDefault <= 0 || cfg.HistoryDefault > cfg.HistoryMax {
		cfg.HistoryDefault = min(DefaultConfig().HistoryDefault, cfg.HistoryMax)
	}
	return &Engine{cfg: cfg, sc: sc, help: strings.ReplaceAll(help, "#", sc)}
}

// Config returns the engine's configuration (its slices are shared: do not
// modify them).
func (e *Engine) Config() Config { return e.cfg }

// Input is a Request with its addresses parsed and its command recognised;
// Prepare builds it so that the daemon can route by RoomKey before Handle.
// Only Prepare makes a usable Input.
type Input struct {
	Req  Request
	From URI // the sender
	RURI URI // where the MESSAGE was sent

	kind    cmdKind
	cmd     Command
	manager bool   // RURI is the room manager, not a room
	room    URI    // the room the request concerns, if any
	key     string // room.Key(), computed once for routing and lookup
	roomErr error  // the room argument did not parse
	reason  string // the reason of a #remove or #ban, "" when none
	replyID string // Req.CallID when it is safe to echo in a header
}

// RoomKey is the key of the room the request concerns (from the request URI
// or a room argument), or "" when it concerns none (#help, #rooms, an
// unknown command, a request to the manager without a room). The daemon
// routes by it: every request touches at most this one room.
func (in *Input) RoomKey() string { return in.key }

// Command returns the canonical name of what the request is: "chat" for a
// chat line, "invalid" for an unknown command, else the command's name with
// aliases resolved ("reject" is "deny"). Result.Command carries the same.
func (in *Input) Command() string { return in.kind.spec().name }

// ReplyID is the Call-ID that direct replies to in carry as In-Reply-To:
// the request's Call-ID when it is safe to echo in a header, else "".
func (in *Input) ReplyID() string { return in.replyID }
