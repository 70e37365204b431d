package imc

import (
	"strings"
	"testing"
)

func TestAdmin(t *testing.T) {
	w := newWorld(t, nativeRules())
	f, fails := w.adminOK, w.adminFails
	u := func(s string) URI { return uri(t, s) }

	f(AdminOp{Kind: AdminCreate, Room: u("ops"), User: u("bob")}, "ok",
		"create-room sip:ops@h flag=0", "add-member sip:ops@h sip:bob@h flag=1", "ops@h>bob@h: *** room was created")
	f(AdminOp{Kind: AdminCreate, Room: u("ops2"), User: u("bob"), Private: true}, "ok",
		"create-room sip:ops2@h flag=1", "add-member sip:ops2@h sip:bob@h flag=1", "ops2@h>bob@h: *** room was created")
	fails(AdminOp{Kind: AdminCreate, Room: u("OPS"), User: u("bob")}, ErrRoomExists, "sip:ops@h")
	fails(AdminOp{Kind: AdminCreate, Room: u("x"), User: u(strings.Repeat("b", 65))}, ErrTooLong, "limited to 64")
	fails(AdminOp{Kind: AdminCreate, Room: u(strings.Repeat("r", 59)), User: u("bob")}, ErrTooLong, "longer than 64")
	fails(AdminOp{Kind: AdminCreate, Room: u("x")}, ErrBadArgument, "empty user part")
	fails(AdminOp{Kind: AdminCreate, Room: u("chat-manager"), User: u("bob")}, ErrBadArgument, "reserved")
	fails(AdminOp{Kind: AdminCreate, Room: URI{User: "a b", Host: "h"}, User: u("bob")}, ErrBadArgument, "forbidden byte 0x20")

	f(AdminOp{Kind: AdminAdd, Room: u("ops"), User: u("carol")}, "ok", "add-member sip:ops@h sip:carol@h flag=0",
		"ops@h>bob@h: *** <sip:carol@h> has joined the room", "ops@h>carol@h: *** <sip:carol@h> has joined the room")
	f(AdminOp{Kind: AdminAdd, Room: u("pub"), User: u("IVY")}, "ok", "update-member sip:pub@h sip:ivy@h flag=0",
		"pub@h>alice@h: *** <sip:ivy@h> has joined the room", "pub@h>adam@h: *** <sip:ivy@h> has joined the room",
		"pub@h>mike@h: *** <sip:ivy@h> has joined the room", "pub@h>ivy@h: *** <sip:ivy@h> has joined the room")
	fails(AdminOp{Kind: AdminAdd, Room: u("ops"), User: u("carol")}, ErrAlreadyMember, "sip:carol@h")
	fails(AdminOp{Kind: AdminAdd, Room: u("gone"), User: u("carol")}, ErrNoSuchRoom, "sip:gone@h")
	fails(AdminOp{Kind: AdminAdd, Room: u("ops"), User: u("c@" + strings.Repeat("d", 65))}, ErrTooLong, "limited to 64")

	f(AdminOp{Kind: AdminSetRole, Room: u("ops"), User: u("carol"), Role: RoleAdmin}, "ok", "update-member sip:ops@h sip:carol@h flag=2",
		"ops@h>bob@h: *** <sip:carol@h> is now an admin", "ops@h>carol@h: *** <sip:carol@h> is now an admin")
	f(AdminOp{Kind: AdminSetRole, Room: u("ops"), User: u("carol"), Role: RoleAdmin}, "ok")
	f(AdminOp{Kind: AdminSetRole, Room: u("ops"), User: u("carol"), Role: RoleOwner}, "ok",
		"update-member sip:ops@h sip:carol@h flag=1", "update-member sip:ops@h sip:bob@h flag=2",
		"ops@h>bob@h: *** <sip:carol@h> is now the owner\n*** <sip:bob@h> is now an admin",
		"ops@h>carol@h: *** <sip:carol@h> is now the owner\n*** <sip:bob@h> is now an admin")
	f(AdminOp{Kind: AdminSetRole, Room: u("ops"), User: u("bob"), Role: RoleMember}, "ok", "update-member sip:ops@h sip:bob@h flag=0",
		"ops@h>carol@h: *** <sip:bob@h> is now a member", "ops@h>bob@h: *** <sip:bob@h> is now a member")
	fails(AdminOp{Kind: AdminSetRole, Room: u("ops"), User: u("carol"), Role: RoleMember}, ErrOwner, "sip:carol@h owns room sip:ops@h")
	fails(AdminOp{Kind: AdminSetRole, Room: u("ops"), User: u("zed"), Role: RoleAdmin}, ErrNotMember, "sip:zed@h")
	fails(AdminOp{Kind: AdminSetRole, Room: u("priv"), User: u("IVY"), Role: RoleAdmin}, ErrNotMember, "sip:IVY@h is not an active member")
	fails(AdminOp{Kind: AdminSetRole, Room: u("ops"), User: u("bob"), Role: Role(9)}, ErrBadArgument, "role 9")
	fails(AdminOp{Kind: AdminSetRole, Room: u("gone"), User: u("bob"), Role: RoleAdmin}, ErrNoSuchRoom, "sip:gone@h")
	// An ownerless room gets an owner from the operator.
	w.rs.Put(NewRoom(u("orphan"), 0, []Member{{u("mike"), 0}}))
	f(AdminOp{Kind: AdminSetRole, Room: u("orphan"), User: u("mike"), Role: RoleOwner}, "ok", "update-member sip:orphan@h sip:mike@h flag=1",
		"orphan@h>mike@h: *** <sip:mike@h> is now the owner")

	f(AdminOp{Kind: AdminNotice, Room: u("pub"), Text: "maintenance at noon"}, "ok",
		"pub@h>alice@h: maintenance at noon", "pub@h>adam@h: maintenance at noon", "pub@h>mike@h: maintenance at noon", "pub@h>ivy@h: maintenance at noon")
	f(AdminOp{Kind: AdminNotice, Room: u("priv"), Text: "x"}, "ok", "priv@h>alice@h: x", "priv@h>adam@h: x", "priv@h>mike@h: x")
	fails(AdminOp{Kind: AdminNotice, Room: u("priv"), Text: " \r\n"}, ErrBadArgument, "empty")
	fails(AdminOp{Kind: AdminNotice, Room: u("priv"), Text: strings.Repeat("x", 1024)}, ErrTooLong, "1024 bytes, the limit is 1023")
	fails(AdminOp{Kind: AdminNotice, Room: u("gone"), Text: "x"}, ErrNoSuchRoom, "sip:gone@h")

	f(AdminOp{Kind: AdminRemove, Room: u("pub"), User: u("Mike")}, "ok", "remove-member sip:pub@h sip:mike@h flag=0",
		"pub@h>mike@h: You have been removed from this room",
		"pub@h>alice@h: *** <sip:mike@h> has been removed", "pub@h>adam@h: *** <sip:mike@h> has been removed", "pub@h>ivy@h: *** <sip:mike@h> has been removed")
	f(AdminOp{Kind: AdminRemove, Room: u("priv"), User: u("ivy")}, "ok", "remove-member sip:priv@h sip:ivy@h flag=0",
		"priv@h>ivy@h: Your invitation to sip:priv@h has been withdrawn")
	fails(AdminOp{Kind: AdminRemove, Room: u("pub"), User: u("alice")}, ErrOwner, "sip:alice@h owns room sip:pub@h")
	fails(AdminOp{Kind: AdminRemove, Room: u("pub"), User: u("zed")}, ErrNotMember, "sip:zed@h")
	fails(AdminOp{Kind: AdminRemove, Room: u("gone"), User: u("zed")}, ErrNoSuchRoom, "sip:gone@h")

	f(AdminOp{Kind: AdminDestroy, Room: u("PRIV")}, "ok", "delete-room sip:priv@h",
		"priv@h>alice@h: The room has been destroyed", "priv@h>adam@h: The room has been destroyed", "priv@h>mike@h: The room has been destroyed")
	fails(AdminOp{Kind: AdminDestroy, Room: u("priv")}, ErrNoSuchRoom, "sip:priv@h")
	fails(AdminOp{Kind: AdminKind(0), Room: u("pub")}, ErrBadArgument, "unknown operator action")
	fails(AdminOp{Kind: AdminKind(42), Room: u("pub")}, ErrBadArgument, "unknown operator action")

	if got := (AdminOp{Room: u("Pub@H")}).RoomKey(); got != "pub@h" {
		t.Errorf("RoomKey %q", got)
	}
	if w.rs.Room("priv@h") != nil || members(w.rs, "ops") != "carol=1 bob=0" {
		t.Errorf("final state: priv %v, ops %s", w.rs.Room("priv@h"), members(w.rs, "ops"))
	}
}

func TestParseRole(t *testing.T) {
	for s, want := range map[string]Role{"owner": RoleOwner, "ADMIN": RoleAdmin, "Member": RoleMember} {
		if r, ok := ParseRole(s); !ok || r != want || !strings.EqualFold(r.String(), s) {
			t.Errorf("ParseRole(%q) = %v, %v", s, r, ok)
		}
	}
	for _, s := range []string{"", "admins", "root", "owner "} {
		if _, ok := ParseRole(s); ok {
			t.Errorf("ParseRole(%q) ok", s)
		}
	}
	if Role(7).String() != "role(7)" {
		t.Errorf("Role(7) = %s", Role(7))
	}
}
