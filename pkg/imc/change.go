package imc

import "fmt"

// Op is the kind of one state change.
type Op uint8

// The state changes a command can make. Each of the first six maps to one
// statement on the standard tables; the moderation changes (OpModerate to
// OpUnban) to one on imcd's own tables beside them, which the native module
// never reads.
const (
	// OpCreateRoom inserts an imc_rooms row (Room, RoomFlags).
	OpCreateRoom Op = iota + 1
	// OpDeleteRoom deletes the room row and every imc_members row of the room.
	OpDeleteRoom
	// OpUpdateRoom sets the room's flag (RoomFlags).
	OpUpdateRoom
	// OpAddMember inserts an imc_members row (Room, Member, MemberFlags).
	OpAddMember
	// OpUpdateMember sets an existing member's flag (MemberFlags).
	OpUpdateMember
	// OpRemoveMember deletes one imc_members row (and the member's voice).
	OpRemoveMember
	// OpModerate makes the room moderated.
	OpModerate
	// OpUnmoderate makes the room unmoderated.
	OpUnmoderate
	// OpVoice gives member Member voice.
	OpVoice
	// OpDevoice takes member Member's voice away.
	OpDevoice
	// OpBan bans user Member (Reason, By). A member is removed first, by an
	// OpRemoveMember in the same change set: a banned user has no
	// imc_members row.
	OpBan
	// OpUnban lifts the ban of user Member.
	OpUnban

	// OpLast is the last Op, for whoever checks that an Op is known.
	OpLast = OpUnban
)

// String returns the operation's name, as Change.String shows it.
func (o Op) String() string {
	switch o {
	case OpCreateRoom:
		return "create-room"
	case OpDeleteRoom:
		return "delete-room"
	case OpUpdateRoom:
		return "update-room"
	case OpAddMember:
		return "add-member"
	case OpUpdateMember:
		return "update-member"
	case OpRemoveMember:
		return "remove-member"
	case OpModerate:
		return "moderate"
	case OpUnmoderate:
		return "unmoderate"
	case OpVoice:
		return "voice"
	case OpDevoice:
		return "devoice"
	case OpBan:
		return "ban"
	case OpUnban:
		return "unban"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one state change. A command's changes are committed in one
// transaction, in order, before any Notice about them is sent.
type Change struct {
	Op          Op
	Room        URI
	RoomFlags   RoomFlags
	Member      URI
	MemberFlags MemberFlags
	// Reason and By are an OpBan's: why, as given ("" for none), and who
	// banned (zero for an operator).
	Reason string
	By     URI
}

// String shows the change for logs and tests: the operation, the room, and
// the member and flag where they apply.
func (c Change) String() string {
	switch c.Op {
	case OpCreateRoom, OpUpdateRoom:
		return fmt.Sprintf("%s %s flag=%d", c.Op, c.Room, c.RoomFlags)
	case OpDeleteRoom, OpModerate, OpUnmoderate:
		return fmt.Sprintf("%s %s", c.Op, c.Room)
	case OpVoice, OpDevoice, OpUnban:
		return fmt.Sprintf("%s %s %s", c.Op, c.Room, c.Member)
	case OpBan:
		by := "operator"
		if !c.By.IsZero() {
			by = c.By.String()
		}
		return fmt.Sprintf("%s %s %s by=%s reason=%q", c.Op, c.Room, c.Member, by, c.Reason)
	default:
		return fmt.Sprintf("%s %s %s flag=%d", c.Op, c.Room, c.Member, c.MemberFlags)
	}
}
