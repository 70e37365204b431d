package imc

import (
	"fmt"
	"strings"
)

// cmdKind is what a request is: a chat line or one of the commands.
type cmdKind uint8

const (
	cmdChat cmdKind = iota
	cmdInvalid
	cmdCreate
	cmdJoin
	cmdInvite
	cmdAccept
	cmdDeny
	cmdRemove
	cmdExit
	cmdDestroy
	cmdList
	cmdHelp
	cmdRooms
	cmdAdd
	cmdModify
	cmdHistory
	cmdTopic
	cmdBan
	cmdUnban
	cmdBans
	cmdModerate
	cmdVoice
	cmdDevoice
)

// cmdSpec is the syntax of one command.
type cmdSpec struct {
	name     string // canonical name, Result.Command
	args     string // usage after the name
	min, max int    // parameter counts
	roomArg  int    // index of the room parameter; -1: the command names no room
}

// takesReason reports whether the words after the command's user (and
// room, when the word after the user names one: see Engine.namesRoom)
// are a free text reason, however many they are.
func (k cmdKind) takesReason() bool { return k == cmdRemove || k == cmdBan }

// roomIsRURI as a roomArg: the command concerns the room it was sent to
// and takes no room argument.
const roomIsRURI = MaxParams + 1

// spec is a switch rather than a table so that the package holds no
// mutable state.
func (k cmdKind) spec() cmdSpec {
	switch k {
	case cmdChat:
		return cmdSpec{name: "chat", roomArg: -1}
	case cmdCreate:
		return cmdSpec{"create", " <room> [private]", 1, 2, 0}
	case cmdJoin:
		return cmdSpec{"join", " [<room>]", 0, 1, 0}
	case cmdInvite:
		return cmdSpec{"invite", " <user> [<room>]", 1, 2, 1}
	case cmdAccept:
		return cmdSpec{"accept", " [<room>]", 0, 1, 0}
	case cmdDeny:
		return cmdSpec{"deny", " [<room>]", 0, 1, 0}
	case cmdRemove:
		return cmdSpec{"remove", " <user> [<room>] [<reason>]", 1, MaxParams, 1}
	case cmdExit:
		return cmdSpec{"exit", " [<room>]", 0, 1, 0}
	case cmdDestroy:
		return cmdSpec{"destroy", " [<room>]", 0, 1, 0}
	case cmdList:
		return cmdSpec{"list", " [<room>]", 0, 1, 0}
	case cmdHelp:
		return cmdSpec{"help", "", 0, MaxParams, -1}
	case cmdRooms:
		return cmdSpec{"rooms", "", 0, 0, -1}
	case cmdAdd:
		return cmdSpec{"add", " <user> [<room>]", 1, 2, 1}
	case cmdModify:
		return cmdSpec{"modify", " <user> owner|admin|member [<room>]", 2, 3, 2}
	case cmdHistory:
		return cmdSpec{"history", " [<n>]", 0, MaxParams, roomIsRURI}
	case cmdTopic:
		return cmdSpec{"topic", " [<text>]", 0, MaxParams, roomIsRURI}
	case cmdBan:
		return cmdSpec{"ban", " <user> [<room>] [<reason>]", 1, MaxParams, 1}
	case cmdUnban:
		return cmdSpec{"unban", " <user> [<room>]", 1, 2, 1}
	case cmdBans:
		return cmdSpec{"bans", " [<room>]", 0, 1, 0}
	case cmdModerate:
		return cmdSpec{"moderate", " on|off [<room>]", 1, 2, 1}
	case cmdVoice:
		return cmdSpec{"voice", " <user> [<room>]", 1, 2, 1}
	case cmdDevoice:
		return cmdSpec{"devoice", " <user> [<room>]", 1, 2, 1}
	}
	return cmdSpec{name: "invalid", max: MaxParams, roomArg: -1}
}

// lookupCommand resolves a lower-case command name, aliases included.
func lookupCommand(name string) cmdKind {
	switch name {
	case "create":
		return cmdCreate
	case "join":
		return cmdJoin
	case "invite":
		return cmdInvite
	case "accept":
		return cmdAccept
	case "deny", "reject":
		return cmdDeny
	case "remove":
		return cmdRemove
	case "exit", "leave":
		return cmdExit
	case "destroy":
		return cmdDestroy
	case "list", "members":
		return cmdList
	case "help":
		return cmdHelp
	case "rooms":
		return cmdRooms
	case "add":
		return cmdAdd
	case "modify":
		return cmdModify
	case "history":
		return cmdHistory
	case "topic", "subject":
		return cmdTopic
	case "ban":
		return cmdBan
	case "unban":
		return cmdUnban
	case "bans":
		return cmdBans
	case "moderate":
		return cmdModerate
	case "voice":
		return cmdVoice
	case "devoice":
		return cmdDevoice
	}
	return cmdInvalid
}

// Prepare parses From and RURI (error wrapping ErrBadRequest when either is
// unusable: no reply can be addressed), recognises the command and works out
// which room the request concerns (RoomKey). A bad room argument is not an
// error here: Handle answers it.
func (e *Engine) Prepare(req Request) (Input, error) {
	from, err := ParseURI(req.From)
	if err != nil {
		return Input{}, fmt.Errorf("%w: From: %w", ErrBadRequest, err)
	}
	ruri, err := ParseURI(req.RURI)
	if err != nil {
		return Input{}, fmt.Errorf("%w: request URI: %w", ErrBadRequest, err)
	}
	in := Input{Req: req, From: from, RURI: ruri, replyID: safeCallID(req.CallID)}
	in.manager = e.isManager(ruri)
	cmd, ok := ParseCommand(req.Body, e.cfg.StartChar)
	if !ok {
		if !in.manager {
			in.setRoom(ruri)
		}
		return in, nil
	}
	in.cmd = cmd
	in.kind = lookupCommand(cmd.Name)
	sp := in.kind.spec()
	roomArg := sp.roomArg
	if in.kind.takesReason() {
		roomArg = e.reasonArgs(&in)
	}
	switch {
	case roomArg < 0:
	case roomArg < len(cmd.Params):
		u, err := ParseArg(cmd.Params[roomArg], ruri.Host)
		if err != nil {
			in.roomErr = err
		} else {
			in.setRoom(u)
		}
	case in.kind != cmdCreate && !in.manager:
		in.setRoom(ruri)
	}
	return in, nil
}

// reasonArgs splits the parameters of a command with a reason: the word
// after the user is the room when it names one (namesRoom), and the reason
// follows it; otherwise the reason starts there and the room is the one
// the request was sent to. It sets in.reason and returns the room
// parameter's index (roomIsRURI: none).
func (e *Engine) reasonArgs(in *Input) int {
	p := in.cmd.Params
	if len(p) < 2 {
		return 1
	}
	if in.manager || e.namesRoom(p[1]) {
		in.reason = reasonText(in.Req.Body, 2)
		return 1
	}
	in.reason = reasonText(in.Req.Body, 1)
	return roomIsRURI
}

// namesRoom reports whether word, after the user of a command that takes
// a reason, names a room rather than starting the reason: a SIP URI, an
// address with a domain, or a name starting with the room prefix. (A room
// named otherwise is named as name@domain.)
func (e *Engine) namesRoom(word string) bool {
	return strings.IndexByte(word, '@') >= 0 || hasScheme(word) ||
		e.cfg.RoomPrefix != "" && strings.HasPrefix(word, e.cfg.RoomPrefix)
}

// hasScheme reports whether s starts with "sip:" or "sips:" (after an
// optional '<'), in any case.
func hasScheme(s string) bool {
	s = strings.TrimPrefix(s, "<")
	return len(s) >= 4 && strings.EqualFold(s[:4], "sip:") || len(s) >= 5 && strings.EqualFold(s[:5], "sips:")
}

func (in *Input) setRoom(u URI) {
	in.room = u
	in.key = u.Key()
}

// isManager reports whether u is the room manager rather than a room.
func (e *Engine) isManager(u URI) bool {
	return e.cfg.ManagerUser != "" && strings.EqualFold(u.User, e.cfg.ManagerUser)
}

// safeCallID returns id when it can be pasted into an In-Reply-To header as
// is, else "": a Call-ID is printable ASCII without blanks (RFC 3261 word),
// and a synthetic event could carry anything.
func safeCallID(id string) string {
	if len(id) > 255 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return ""
		}
	}
	return id
}
