package mi

import (
	"context"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// MemberState is what delivery knows of one member, as seen from one room.
type MemberState struct {
	// Reachable is false from a MESSAGE to them that ended unreachable
	// (404, 408, 480…) until they are reachable again.
	Reachable bool
	// Since is when they became unreachable; NextRetry when the oldest
	// notice kept for them is tried again (zero when reachable).
	Since, NextRetry time.Time
	// Kept counts this room's notices waiting for them; Dropped this
	// room's notices dropped (over the bounds) since they were last told
	// what they missed; InFlight their requests in OpenSIPS, all rooms.
	Kept, Dropped, InFlight int
}

// MemberStates reports members' delivery state (the daemon's scheduler).
type MemberStates interface {
	// MemberStates returns one state per member of room, in that order.
	MemberStates(room imc.URI, members []imc.URI) []MemberState
}

// MemberStatusCommand is imc:member_status (3.x-style alias
// imc_member_status): a room's members, in the order imc_list_members
// gives them, with their role and delivery state:
//
//	{"ROOM":<param as given>,"MEMBERS":[{"URI":…,"ROLE":"owner","STATE":"reachable",
//	 "KEPT":0,"DROPPED":0,"IN_FLIGHT":0},{…,"STATE":"unreachable",
//	 "UNREACHABLE_FOR":95,"RETRY_IN":25,…}],"NO_MEMBERS":n,"NO_UNREACHABLE":u}
//
// ROLE is owner, admin, member or invited; the two durations are whole
// seconds. The room param is as imc_list_members takes it.
func MemberStatusCommand(rooms imc.View, states MemberStates) Command {
	c := memberStatus{rooms: rooms, states: states, now: time.Now}
	return Command{Name: "imc:member_status", Aliases: []string{"imc_member_status"}, Params: roomParamSets(), Handler: c.handle}
}

type memberStatus struct {
	rooms  imc.View
	states MemberStates
	now    func() time.Time
}

func (c memberStatus) handle(_ context.Context, params *fastjson.Value) ([]byte, error) {
	param, r, err := roomArg(params, c.rooms)
	if err != nil {
		return nil, err
	}
	members := r.Members()
	uris := make([]imc.URI, len(members))
	for i, m := range members {
		uris[i] = m.URI
	}
	states := c.states.MemberStates(r.URI, uris)
	now := c.now()
	unreachable := 0
	buf := make([]byte, 0, 64+len(param)+len(members)*128)
	buf = append(buf, `{"ROOM":`...)
	buf = jsonrpc.AppendString(buf, param)
	buf = append(buf, `,"MEMBERS":[`...)
	for i, m := range members {
		var st MemberState
		if i < len(states) {
			st = states[i]
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"URI":`...)
		buf = appendURI(buf, m.URI)
		buf = append(buf, `,"ROLE":"`...)
		if m.Invited() {
			buf = append(buf, "invited"...)
		} else {
			buf = append(buf, m.Role().String()...)
		}
		if st.Reachable {
			buf = append(buf, `","STATE":"reachable"`...)
		} else {
			unreachable++
			buf = append(buf, `","STATE":"unreachable","UNREACHABLE_FOR":`...)
			buf = strconv.AppendInt(buf, int64(max(now.Sub(st.Since), 0)/time.Second), 10)
			buf = append(buf, `,"RETRY_IN":`...)
			buf = strconv.AppendInt(buf, int64(max(st.NextRetry.Sub(now), 0)/time.Second), 10)
		}
		buf = append(buf, `,"KEPT":`...)
		buf = strconv.AppendInt(buf, int64(st.Kept), 10)
		buf = append(buf, `,"DROPPED":`...)
		buf = strconv.AppendInt(buf, int64(st.Dropped), 10)
		buf = append(buf, `,"IN_FLIGHT":`...)
		buf = strconv.AppendInt(buf, int64(st.InFlight), 10)
		buf = append(buf, '}')
	}
	buf = append(buf, `],"NO_MEMBERS":`...)
	buf = strconv.AppendInt(buf, int64(len(members)), 10)
	buf = append(buf, `,"NO_UNREACHABLE":`...)
	buf = strconv.AppendInt(buf, int64(unreachable), 10)
	return append(buf, '}'), nil
}
