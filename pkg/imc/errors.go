package imc

import "errors"

// Errors returned by Engine.Admin (and wrapped with context). The MI turns
// them into JSON-RPC codes at its edge.
var (
	// ErrNoSuchRoom: the room does not exist.
	ErrNoSuchRoom = errors.New("no such room")
	// ErrRoomExists: a room with that identity exists already.
	ErrRoomExists = errors.New("room exists")
	// ErrNotMember: the user is not a member of the room.
	ErrNotMember = errors.New("not a member")
	// ErrAlreadyMember: the user is a member (or pending invitee) already.
	ErrAlreadyMember = errors.New("already a member")
	// ErrOwner: the operation would remove or demote the room's owner.
	ErrOwner = errors.New("operation not allowed on the owner")
	// ErrTooLong: a value does not fit the standard tables' 64-character columns.
	ErrTooLong = errors.New("value too long")
	// ErrBadRequest: the request's From or request URI is unusable, so no
	// reply can be addressed; the caller logs and counts it.
	ErrBadRequest = errors.New("bad request")
)
