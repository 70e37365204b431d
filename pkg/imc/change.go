package imc

import "fmt"

// Op is the kind of one state change.
type Op uint8

// The state changes a command can make. Each maps to one statement on the
// standard tables.
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
	// OpRemoveMember deletes one imc_members row.
	OpRemoveMember
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
}

// String shows the change for logs and tests: the operation, the room, and
// the member and flag where they apply.
func (c Change) String() string {
	switch c.Op {
	case OpCreateRoom, OpUpdateRoom:
		return fmt.Sprintf("%s %s flag=%d", c.Op, c.Room, c.RoomFlags)
	case OpDeleteRoom:
		return fmt.Sprintf("%s %s", c.Op, c.Room)
	default:
		return fmt.Sprintf("%s %s %s flag=%d", c.Op, c.Room, c.Member, c.MemberFlags)
	}
}
