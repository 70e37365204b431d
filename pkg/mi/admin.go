package mi

import (
	"context"
	"errors"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// adminCommands returns imcd's operator commands. Each validates its params,
// builds an imc.AdminOp and hands it to admin, which runs it through the
// same engine, store and delivery as a SIP command.
func adminCommands(admin Admin) []Command {
	a := adminCmds{admin: admin}
	return []Command{
		{Name: "imc:create_room", Aliases: []string{"imc_create_room"},
			Params: createRoomParams(), Handler: a.createRoom},
		{Name: "imc:destroy_room", Aliases: []string{"imc_destroy_room"},
			Params: roomParamSets(), Handler: a.destroyRoom},
		{Name: "imc:add_member", Aliases: []string{"imc_add_member"},
			Params: roomUserParams(), Handler: a.addMember},
		{Name: "imc:remove_member", Aliases: []string{"imc_remove_member"},
			Params: reasonParams(), Handler: a.removeMember},
		{Name: "imc:set_role", Aliases: []string{"imc_set_role"},
			Params: setRoleParams(), Handler: a.setRole},
		{Name: "imc:notice", Aliases: []string{"imc_notice"},
			Params: noticeParams(), Handler: a.notice},
		{Name: "imc:ban", Aliases: []string{"imc_ban"},
			Params: reasonParams(), Handler: a.ban},
		{Name: "imc:unban", Aliases: []string{"imc_unban"},
			Params: roomUserParams(), Handler: a.unban},
		{Name: "imc:moderate", Aliases: []string{"imc_moderate"},
			Params: moderateParams(), Handler: a.moderate},
	}
}

// The admin commands' param sets (the room-only set is roomParamSets).
func createRoomParams() [][]string {
	return [][]string{{"room", "owner"}, {"room", "owner", "private"}}
}
func roomUserParams() [][]string { return [][]string{{"room", "user"}} }
func reasonParams() [][]string   { return [][]string{{"room", "user"}, {"room", "user", "reason"}} }
func moderateParams() [][]string { return [][]string{{"room", "mode"}} }
func setRoleParams() [][]string  { return [][]string{{"room", "user", "role"}} }
func noticeParams() [][]string   { return [][]string{{"room", "text"}} }

type adminCmds struct {
	admin Admin
}

func (a adminCmds) createRoom(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	args, err := StringParams(params, createRoomParams())
	if err != nil {
		return nil, err
	}
	op := imc.AdminOp{Kind: imc.AdminCreate}
	if op.Room, err = uriParam(args, "room"); err != nil {
		return nil, err
	}
	if op.User, err = uriParam(args, "owner"); err != nil {
		return nil, err
	}
	if v, ok := args["private"]; ok {
		if op.Private, ok = parseYesNo(v); !ok {
			return nil, errBadParam("private", "yes, no, 1 or 0")
		}
	}
	return a.run(ctx, op)
}

func (a adminCmds) destroyRoom(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	args, err := StringParams(params, roomParamSets())
	if err != nil {
		return nil, err
	}
	op := imc.AdminOp{Kind: imc.AdminDestroy}
	if op.Room, err = uriParam(args, "room"); err != nil {
		return nil, err
	}
	return a.run(ctx, op)
}

func (a adminCmds) addMember(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	return a.memberOp(ctx, params, imc.AdminAdd, roomUserParams())
}

func (a adminCmds) removeMember(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	return a.memberOp(ctx, params, imc.AdminRemove, reasonParams())
}

func (a adminCmds) ban(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	return a.memberOp(ctx, params, imc.AdminBan, reasonParams())
}

func (a adminCmds) unban(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	return a.memberOp(ctx, params, imc.AdminUnban, roomUserParams())
}

// memberOp runs an action of kind on the user of a room; sets are the
// params it takes, a reason among them for a removal or a ban.
func (a adminCmds) memberOp(ctx context.Context, params *fastjson.Value, kind imc.AdminKind, sets [][]string) ([]byte, error) {
	args, err := StringParams(params, sets)
	if err != nil {
		return nil, err
	}
	op := imc.AdminOp{Kind: kind, Text: strings.TrimSpace(args["reason"])}
	if op.Room, err = uriParam(args, "room"); err != nil {
		return nil, err
	}
	if op.User, err = uriParam(args, "user"); err != nil {
		return nil, err
	}
	return a.run(ctx, op)
}

func (a adminCmds) setRole(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	args, err := StringParams(params, setRoleParams())
	if err != nil {
		return nil, err
	}
	op := imc.AdminOp{Kind: imc.AdminSetRole}
	if op.Room, err = uriParam(args, "room"); err != nil {
		return nil, err
	}
	if op.User, err = uriParam(args, "user"); err != nil {
		return nil, err
	}
	role, ok := imc.ParseRole(args["role"])
	if !ok {
		return nil, errBadParam("role", "owner, admin or member")
	}
	op.Role = role
	return a.run(ctx, op)
}

func (a adminCmds) notice(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	args, err := StringParams(params, noticeParams())
	if err != nil {
		return nil, err
	}
	op := imc.AdminOp{Kind: imc.AdminNotice, Text: args["text"]}
	if op.Room, err = uriParam(args, "room"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(op.Text) == "" {
		return nil, errEmptyParam("text")
	}
	return a.run(ctx, op)
}

func (a adminCmds) moderate(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	args, err := StringParams(params, moderateParams())
	if err != nil {
		return nil, err
	}
	op := imc.AdminOp{Kind: imc.AdminModerate}
	if op.Room, err = uriParam(args, "room"); err != nil {
		return nil, err
	}
	var ok bool
	if op.Moderated, ok = parseOnOff(args["mode"]); !ok {
		return nil, errBadParam("mode", "on or off (yes, no, 1, 0)")
	}
	return a.run(ctx, op)
}

// run hands op to the daemon and answers "OK" once it is committed.
func (a adminCmds) run(ctx context.Context, op imc.AdminOp) ([]byte, error) {
	if err := a.admin.Admin(ctx, op); err != nil {
		return nil, adminError(err)
	}
	return []byte(`"OK"`), nil
}

// adminError maps the engine's refusals to the native module's codes: 404
// for what does not exist, 400 for what is not allowed or malformed, 403
// for what the room policy forbids, with the engine's explanation as data. Other errors (the store's, a timeout)
// stay as they are and become 500.
func adminError(err error) error {
	var code int
	var msg string
	switch {
	case errors.Is(err, imc.ErrNoSuchRoom):
		code, msg = 404, "no such room"
	case errors.Is(err, imc.ErrNotMember):
		code, msg = 404, "no such member"
	case errors.Is(err, imc.ErrRoomExists):
		code, msg = 400, "room exists"
	case errors.Is(err, imc.ErrAlreadyMember):
		code, msg = 400, "already a member"
	case errors.Is(err, imc.ErrBanned):
		code, msg = 400, "user is banned"
	case errors.Is(err, imc.ErrNotBanned):
		code, msg = 404, "no such ban"
	case errors.Is(err, imc.ErrOwner):
		code, msg = 400, "not allowed on the owner"
	case errors.Is(err, imc.ErrTooLong):
		code, msg = 400, "value too long"
	case errors.Is(err, imc.ErrPolicy):
		code, msg = 403, "not allowed by the room policy"
	case errors.Is(err, imc.ErrBadArgument), errors.Is(err, imc.ErrBadURI):
		code, msg = 400, "bad param"
	default:
		return err
	}
	return &jsonrpc.Error{Code: code, Message: msg, Data: err.Error()}
}

// uriParam parses the address param name: a sip:/sips: URI or user@host.
func uriParam(args map[string]string, name string) (imc.URI, error) {
	v := args[name]
	if v == "" {
		return imc.URI{}, errEmptyParam(name)
	}
	u, err := imc.ParseURI(v)
	if err != nil {
		return imc.URI{}, errBadParam(name, err.Error())
	}
	return u, nil
}

// parseOnOff reads a moderation mode: on/off, or as parseYesNo.
func parseOnOff(s string) (on, ok bool) {
	switch strings.ToLower(s) {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	return parseYesNo(s)
}

// parseYesNo reads the private flag: yes/no, 1/0, true/false, in any case.
func parseYesNo(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes", "1", "true":
		return true, true
	case "no", "0", "false":
		return false, true
	}
	return false, false
}
