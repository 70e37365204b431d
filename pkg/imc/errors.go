package imc

import "errors"

// Sentinel errors. Engine.Admin and Engine.Prepare wrap them with context;
// the MI and the daemon turn them into JSON-RPC codes and log lines at their
// edge. Users never see them: a refused SIP command gets a reply MESSAGE.
var (
	// ErrNoSuchRoom: the room does not exist.
	ErrNoSuchRoom = errors.New("no such room")
	// ErrRoomExists: a room with that identity exists already.
	ErrRoomExists = errors.New("room exists")
	// ErrNotMember: the user is not a member of the room.
	ErrNotMember = errors.New("not a member")
	// ErrAlreadyMember: the user is a member (or pending invitee) already.
	ErrAlreadyMember = errors.New("already a member")
	// ErrBanned: the user is banned from the room (an addition, or a
	// second ban).
	ErrBanned = errors.New("banned from the room")
	// ErrNotBanned: the user to unban is not banned from the room.
	ErrNotBanned = errors.New("not banned")
	// ErrOwner: the operation would remove, ban or demote the room's owner.
	ErrOwner = errors.New("operation not allowed on the owner")
	// ErrTooLong: a value does not fit the standard tables' 64-character
	// columns, or a notice text is longer than Config.MaxBody.
	ErrTooLong = errors.New("value too long")
	// ErrBadArgument: an operator action is malformed (unknown kind or role,
	// missing owner, empty text, reserved room name).
	ErrBadArgument = errors.New("bad argument")
	// ErrPolicy: an operator action creates a room or brings in a member
	// that the room and member policy (Config.RoomPrefix, Domains,
	// MemberDomains) does not allow.
	ErrPolicy = errors.New("not allowed by the room policy")
	// ErrBadRequest: the request's From or request URI is unusable, so no
	// reply can be addressed; the caller logs and counts it.
	ErrBadRequest = errors.New("bad request")
	// ErrBadURI is wrapped by every URI parsing error (see URIError).
	ErrBadURI = errors.New("bad SIP URI")
)
