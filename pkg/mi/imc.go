package mi

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// Admin applies an operator action. The daemon routes op to the shard that
// owns op.Room and returns once the change is committed and its notices are
// queued; errors are imc's sentinels (wrapped) or the store's.
type Admin interface {
	Admin(ctx context.Context, op imc.AdminOp) error
}

// IMCCommands returns the imc commands reading rooms through rooms: the
// native module's list_rooms and list_members under their 4.x and 3.x
// names, and, when admin is not nil, imcd's operator commands (the list of
// a room's bans among them).
func IMCCommands(rooms imc.View, admin Admin) []Command {
	c := &imcCommands{rooms: rooms}
	cmds := []Command{
		{Name: "imc:list_rooms", Aliases: []string{"imc_list_rooms"}, Handler: c.listRooms},
		{Name: "imc:list_members", Aliases: []string{"imc_list_members"}, Params: roomParamSets(), Handler: c.listMembers},
	}
	if admin != nil {
		// imc:bans reads the rooms, but belongs with the operator's
		// moderation (imc:ban, imc:unban).
		cmds = append(cmds, Command{Name: "imc:bans", Aliases: []string{"imc_bans"}, Params: roomParamSets(), Handler: c.listBans})
		cmds = append(cmds, adminCommands(admin)...)
	}
	return cmds
}

func roomParamSets() [][]string { return [][]string{{"room"}} }

// roomArg finds the room a command's "room" parameter names, answering as
// the native module does: the room must be a sip: or sips: URI, and is
// found by user@host, case-insensitively, whatever the port. param is the
// parameter as given, which replies quote back.
func roomArg(params *fastjson.Value, rooms imc.View) (param string, r *imc.Room, err error) {
	args, err := StringParams(params, roomParamSets())
	if err != nil {
		return "", nil, err
	}
	param = args["room"]
	if param == "" {
		return "", nil, &jsonrpc.Error{Code: 400, Message: "empty param"}
	}
	u, err := imc.ParseURI(param)
	if err != nil || !hasSIPScheme(param) {
		return "", nil, &jsonrpc.Error{Code: 400, Message: "bad param"}
	}
	if r = rooms.Room(u.Key()); r == nil {
		return "", nil, errNoSuchRoom()
	}
	return param, r, nil
}

type imcCommands struct {
	rooms imc.View
	// lastCount is how many rooms the last listing had: the next one
	// allocates for about as many at once.
	lastCount atomic.Int64
}

// listRooms is imc_list_rooms: {"ROOMS":[{"URI":…,"MEMBERS":n,"OWNER":…},…]},
// ordered by URI. MEMBERS counts every member, pending invitees included,
// as the native module does; OWNER is "" for a room without an owner. The
// view is held only while room pointers are copied.
func (c *imcCommands) listRooms(_ context.Context, _ *fastjson.Value) ([]byte, error) {
	n := c.lastCount.Load()
	rooms := make([]*imc.Room, 0, n+n/8)
	c.rooms.EachRoom(func(r *imc.Room) bool {
		rooms = append(rooms, r)
		return true
	})
	c.lastCount.Store(int64(len(rooms)))
	uris, keys := sortRooms(rooms)
	// Owners' URIs are about as long as rooms': one allocation, mostly.
	buf := make([]byte, 0, len(`{"ROOMS":[]}`)+2*len(uris)+len(keys)*len(`{"URI":"","MEMBERS":99,"OWNER":""},`))
	buf = append(buf, `{"ROOMS":[`...)
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"URI":`...)
		if uri := uris[k.start:k.end]; plainJSON(uri) {
			buf = append(buf, '"')
			buf = append(buf, uri...)
			buf = append(buf, '"')
		} else {
			buf = jsonrpc.AppendString(buf, string(uri))
		}
		buf = append(buf, `,"MEMBERS":`...)
		buf = strconv.AppendInt(buf, int64(len(k.room.Members())), 10)
		buf = append(buf, `,"OWNER":`...)
		if o, ok := k.room.Owner(); ok {
			buf = appendURI(buf, o.URI)
		} else {
			buf = append(buf, `""`...)
		}
		buf = append(buf, '}')
	}
	return append(buf, "]}"...), nil
}

// roomKey is a room's URI in the arena sortRooms fills.
type roomKey struct {
	start, end uint32
	room       *imc.Room
}

// sortRooms writes every room's URI ("sip:user@host") into one arena and
// returns it with the rooms ordered by URI. Comparing the copies in one
// block, instead of through each room's pointer, keeps a sort of 100k rooms
// in cache; the listing then emits the URIs from the arena.
func sortRooms(rooms []*imc.Room) ([]byte, []roomKey) {
	n := 0
	for _, r := range rooms {
		n += len("sip:@") + len(r.URI.User) + len(r.URI.Host)
	}
	arena := make([]byte, 0, n)
	keys := make([]roomKey, len(rooms))
	for i, r := range rooms {
		start := len(arena)
		arena = append(arena, "sip:"...)
		arena = append(arena, r.URI.User...)
		arena = append(arena, '@')
		arena = append(arena, r.URI.Host...)
		keys[i] = roomKey{start: uint32(start), end: uint32(len(arena)), room: r}
	}
	slices.SortFunc(keys, func(a, b roomKey) int {
		return bytes.Compare(arena[a.start:a.end], arena[b.start:b.end])
	})
	return arena, keys
}

// listMembers is imc_list_members: {"ROOM":<param as given>,"MEMBERS":[…],
// "NO_MEMBERS":n}, members in the room's order (owner first), pending
// invitees included.
func (c *imcCommands) listMembers(ctx context.Context, params *fastjson.Value) ([]byte, error) {
	param, r, err := roomArg(params, c.rooms)
	if err != nil {
		return nil, err
	}
	members := r.Members()
	buf := make([]byte, 0, 64+len(param)+len(members)*48)
	buf = append(buf, `{"ROOM":`...)
	buf = jsonrpc.AppendString(buf, param)
	buf = append(buf, `,"MEMBERS":[`...)
	for i, m := range members {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendURI(buf, m.URI)
	}
	buf = append(buf, `],"NO_MEMBERS":`...)
	buf = strconv.AppendInt(buf, int64(len(members)), 10)
	return append(buf, '}'), nil
}

// listBans is imc:bans: {"ROOM":<param as given>,"BANS":[{"USER":…,
// "BY":…,"REASON":…},…],"NO_BANS":n}, ordered by user; BY is "" for a ban
// by an operator, REASON "" when none was given.
func (c *imcCommands) listBans(_ context.Context, params *fastjson.Value) ([]byte, error) {
	param, r, err := roomArg(params, c.rooms)
	if err != nil {
		return nil, err
	}
	bans := r.Moderation().Bans
	buf := make([]byte, 0, 64+len(param)+len(bans)*96)
	buf = append(buf, `{"ROOM":`...)
	buf = jsonrpc.AppendString(buf, param)
	buf = append(buf, `,"BANS":[`...)
	for i, b := range bans {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"USER":`...)
		buf = appendURI(buf, b.User)
		buf = append(buf, `,"BY":`...)
		if b.By.IsZero() {
			buf = append(buf, `""`...)
		} else {
			buf = appendURI(buf, b.By)
		}
		buf = append(buf, `,"REASON":`...)
		buf = jsonrpc.AppendString(buf, b.Reason)
		buf = append(buf, '}')
	}
	buf = append(buf, `],"NO_BANS":`...)
	buf = strconv.AppendInt(buf, int64(len(bans)), 10)
	return append(buf, '}'), nil
}

func errNoSuchRoom() *jsonrpc.Error { return &jsonrpc.Error{Code: 404, Message: "no such room"} }

func hasSIPScheme(s string) bool {
	return len(s) >= 4 && strings.EqualFold(s[:4], "sip:") || len(s) >= 5 && strings.EqualFold(s[:5], "sips:")
}

// appendURI appends u as the JSON string "sip:user@host" without building
// the string: URIs that imc parsed never need escaping. Anything else (a row
// the native module wrote) goes through the escaping encoder.
func appendURI(dst []byte, u imc.URI) []byte {
	if !plainJSON(u.User) || !plainJSON(u.Host) {
		return jsonrpc.AppendString(dst, u.String())
	}
	dst = append(dst, `"sip:`...)
	dst = append(dst, u.User...)
	dst = append(dst, '@')
	dst = append(dst, u.Host...)
	return append(dst, '"')
}

// plainJSON reports whether s can go into a JSON string unescaped.
func plainJSON[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
