package imc

// Config is the engine's configuration; field names follow the native
// module's parameters where one exists.
type Config struct {
	// StartChar is imc_cmd_start_char: a body starting with it is a command.
	StartChar byte
	// MaxBody is the largest chat text, in bytes, that is relayed.
	MaxBody int
	// CreateOnJoin makes #join of a missing room create it (native behaviour).
	CreateOnJoin bool
	// ManagerUser is the user part of the room manager URI ("chat-manager"):
	// MESSAGEs to it are commands about a room named in an argument, never a
	// room of their own. Empty: every request URI is a room, as natively.
	ManagerUser string
	// MaxRoomsListed caps the lines of a #rooms reply.
	MaxRoomsListed int
}

// DefaultConfig returns the defaults: '#', 1024-byte chat lines (the native
// module refuses 1024 and more), create on join, manager "chat-manager".
func DefaultConfig() Config {
	return Config{StartChar: '#', MaxBody: 1023, CreateOnJoin: true, ManagerUser: "chat-manager", MaxRoomsListed: 50}
}

// Engine applies the IMC rules. It holds only configuration, so one Engine is
// shared by every shard.
type Engine struct {
	cfg Config
}

// NewEngine returns an engine with cfg.
func NewEngine(cfg Config) *Engine { return &Engine{cfg: cfg} }

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Input is a Request with its addresses parsed and its command recognised;
// Prepare builds it so that the daemon can route by RoomKey before Handle.
type Input struct {
	Req  Request
	From URI // the sender
	RURI URI // where the MESSAGE was sent

	cmd     Command
	command bool
	room    URI // the room the request concerns, if any
}

// RoomKey is the key of the room the request concerns (from the request URI
// or a room argument), or "" when it concerns none (#help, #rooms, a
// request to the manager without a room). The daemon routes by it: every
// request touches at most this one room.
func (in *Input) RoomKey() string {
	if in.room.IsZero() {
		return ""
	}
	return in.room.Key()
}

// Role is a member's role as #modify and the MI name it.
type Role uint8

// Roles.
const (
	RoleMember Role = iota
	RoleAdmin
	RoleOwner
)

// AdminKind is an operator action from the MI.
type AdminKind uint8

// Operator actions.
const (
	AdminCreate  AdminKind = iota + 1 // create Room (Private) owned by User
	AdminDestroy                      // destroy Room, telling its members
	AdminAdd                          // add User to Room as an active member
	AdminRemove                       // remove User from Room (never the owner)
	AdminSetRole                      // set User's Role in Room
	AdminNotice                       // send Text to every active member of Room
)

// AdminOp is one operator action. It goes through the same rules, store and
// delivery as a SIP command, with the operator's authority.
type AdminOp struct {
	Kind    AdminKind
	Room    URI
	Private bool
	User    URI
	Role    Role
	Text    string
}
