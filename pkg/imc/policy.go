package imc

import (
	"fmt"
	"strings"
)

// The room and member policy (Config.RoomPrefix, Domains, MemberDomains):
// which rooms may be created, and whom a room may bring in. It applies to
// what is new: rooms already stored that break it are still served, and
// members already in a room stay.

// newRoomRefusal says why room may not be created by a SIP command sent to
// the domain reqHost, or "".
func (e *Engine) newRoomRefusal(room URI, reqHost string) string {
	if !e.namedForRoute(room) {
		if room.User == e.cfg.RoomPrefix {
			return txtRoomOnlyPrefix(e.sc, room, e.cfg.RoomPrefix)
		}
		return txtRoomPrefix(e.sc, room, e.cfg.RoomPrefix)
	}
	if len(e.cfg.Domains) == 0 {
		if !strings.EqualFold(room.Host, reqHost) {
			return txtRoomDomain(room, []string{reqHost})
		}
		return ""
	}
	if !inDomains(room.Host, e.cfg.Domains) {
		return txtRoomDomain(room, e.cfg.Domains)
	}
	return ""
}

// adminRoomError is newRoomRefusal for an operator's imc:create_room:
// there is no domain the request was sent to, so the domain rule applies
// only when Domains is configured (the room's own domain stands in).
func (e *Engine) adminRoomError(room URI) error {
	if msg := e.newRoomRefusal(room, room.Host); msg != "" {
		return fmt.Errorf("%w: %s", ErrPolicy, msg)
	}
	return nil
}

// memberRefusal says why u may not be brought into room by verb ("invited",
// "added"), or "".
func (e *Engine) memberRefusal(u, room URI, verb string) string {
	if strings.EqualFold(u.Host, room.Host) || inDomains(u.Host, e.cfg.MemberDomains) {
		return ""
	}
	return txtMemberDomain(u, room, verb, e.cfg.MemberDomains)
}

// adminMemberError is memberRefusal for an operator's action.
func (e *Engine) adminMemberError(u, room URI, verb string) error {
	if msg := e.memberRefusal(u, room, verb); msg != "" {
		return fmt.Errorf("%w: %s", ErrPolicy, msg)
	}
	return nil
}

// namedForRoute reports whether room's name starts with RoomPrefix and
// goes on after it: "chat-" alone names no room (sip:chat-@domain).
func (e *Engine) namedForRoute(room URI) bool {
	p := e.cfg.RoomPrefix
	return strings.HasPrefix(room.User, p) && (p == "" || len(room.User) > len(p))
}

// inDomains reports whether host is one of domains (AnyDomain matches
// every host).
func inDomains(host string, domains []string) bool {
	for _, d := range domains {
		if d == AnyDomain || strings.EqualFold(d, host) {
			return true
		}
	}
	return false
}

// OutsidePolicy says how a stored room breaks the room policy, or "" when
// it does not (or when the only rule it could break depends on a request:
// with Domains empty, only the name is checked). The daemon logs such rooms
// at start and serves them all the same.
func (e *Engine) OutsidePolicy(room URI) string {
	if !e.namedForRoute(room) {
		if room.User == e.cfg.RoomPrefix {
			return "name is only " + fmt.Sprintf("%q", e.cfg.RoomPrefix)
		}
		return "name does not start with " + fmt.Sprintf("%q", e.cfg.RoomPrefix)
	}
	if len(e.cfg.Domains) > 0 && !inDomains(room.Host, e.cfg.Domains) {
		return "domain " + room.Host + " is not in domains"
	}
	return ""
}
