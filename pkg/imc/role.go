package imc

import (
	"strconv"
	"strings"
)

// Role is a member's role as #modify and the MI name it.
type Role uint8

// Roles, from least to most authority.
const (
	// RoleMember takes part in the room.
	RoleMember Role = iota
	// RoleAdmin may also invite, add and remove members (not the owner nor
	// other admins).
	RoleAdmin
	// RoleOwner may do everything, and only the owner destroys the room or
	// grants roles.
	RoleOwner
)

// ParseRole parses "owner", "admin" or "member", in any case.
func ParseRole(s string) (Role, bool) {
	switch {
	case strings.EqualFold(s, "owner"):
		return RoleOwner, true
	case strings.EqualFold(s, "admin"):
		return RoleAdmin, true
	case strings.EqualFold(s, "member"):
		return RoleMember, true
	}
	return 0, false
}

// String returns the name ParseRole accepts.
func (r Role) String() string {
	switch r {
	case RoleOwner:
		return "owner"
	case RoleAdmin:
		return "admin"
	case RoleMember:
		return "member"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// Role returns m's role. A pending invitee's role is the one it will have
// once it accepts.
func (m Member) Role() Role {
	switch {
	case m.Owner():
		return RoleOwner
	case m.Admin():
		return RoleAdmin
	}
	return RoleMember
}

// withRole returns flags carrying role r instead of the current one.
func (f MemberFlags) withRole(r Role) MemberFlags {
	f &^= MemberOwner | MemberAdmin
	switch r {
	case RoleOwner:
		f |= MemberOwner
	case RoleAdmin:
		f |= MemberAdmin
	}
	return f
}
