package imc

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Every text a user can receive is here, so that they can be reviewed
// together. Where the native module has a text, it is kept byte for byte;
// sc is the configured start character. Anything echoed from a request goes
// through clip first.

// textPlain is the Content-Type of everything the engine writes.
const textPlain = "text/plain"

// Native texts.
const (
	txtCreated    = "*** room was created"
	txtDestroyed  = "The room has been destroyed"
	txtRemovedYou = "You have been removed from this room"
	txtMembers    = "Members:"
)

// nativeHelp is the native module's #help reply, typos included, written
// with '#' for the start character.
const nativeHelp = "\r\n" +
	"#create <room_name> - create new connference room\r\n" +
	"#join [<room_name>] - join the conference room\r\n" +
	"#invite <user_name> [<room_name>] - invite a user to join a conference room\r\n" +
	"#accept - accept invitation to join a conference room\r\n" +
	"#deny - deny invitation to join a conference room\r\n" +
	"#remove <user_name> [<room_name>] - remove an user from the conference room\r\n" +
	"#list - list members is a conference room\r\n" +
	"#exit [<room_name>] - exit from a conference room\r\n" +
	"#destroy [<room_name>] - destroy conference room\r\n"

// imcdHelp follows nativeHelp in the #help reply, in the same style.
const imcdHelp = "#create <room_name> private - create a room that others join only by invitation\r\n" +
	"#rooms - list the public rooms and the rooms you are in\r\n" +
	"#add <user_name> [<room_name>] - add a user to the conference room\r\n" +
	"#modify <user_name> owner|admin|member [<room_name>] - change the role of a member\r\n" +
	"#reject, #leave, #members - the same as #deny, #exit, #list\r\n" +
	"##<text> - send a message that starts with #\r\n"

// moderationHelp closes the #help reply: the commands that keep order in a
// room, which only the owner and admins may use.
const moderationHelp = "For the owner and admins:\r\n" +
	"#remove <user_name> [<room_name>] [<reason>] - remove a user, saying why\r\n" +
	"#ban <user_name> [<room_name>] [<reason>] - remove a user and keep them out\r\n" +
	"#unban <user_name> [<room_name>] - let a banned user in again\r\n" +
	"#bans [<room_name>] - list the banned users\r\n" +
	"#moderate on|off [<room_name>] - let only the owner, admins and members with voice speak\r\n" +
	"#voice|#devoice <user_name> [<room_name>] - give a member voice, or take it away\r\n"

// historyHelp follows imcdHelp when the rooms keep history.
const historyHelp = "#history [<n>] - the last n lines said in the room\r\n" +
	"#topic [<text>] - show the room's topic, or set it (owner and admins; - clears it)\r\n"

func txtJoined(u URI) string { return "*** <" + u.String() + "> has joined the room" }

// txtLeft names the user part only, as the native module does.
func txtLeft(u URI) string { return "The user [" + u.User + "] has left the room" }

// txtInvalid fixes the native text, which doubled the quote before
// "#help" and left out the start character of the command it echoed.
func txtInvalid(sc, name string) string {
	return "invalid command '" + sc + clip(name, 32) + "' - send '" + sc + "help' for details"
}

// txtInvitation fixes the native text, which named the invitee instead of
// the inviter and hard-coded '#'; the "INVITE from:" prefix is kept for
// clients that look for it.
func txtInvitation(sc string, inviter, room URI) string {
	return "INVITE from: " + inviter.AOR() + " to " + room.String() +
		" (Type: '" + sc + "accept' or '" + sc + "deny')"
}

// txtRemoved replaces the native "has joined the room" sent on #remove.
func txtRemoved(u URI) string { return "*** <" + u.String() + "> has been removed" }

// Confirmations and events that the native module does not send.

const txtLeftYou = "You have left the room"

func txtInviteSent(u URI) string { return "*** invitation sent to <" + u.String() + ">" }

func txtInviteFailed(u URI, status string) string {
	return "*** the invitation to <" + u.String() + "> could not be delivered (" +
		clip(status, 64) + ") and was withdrawn"
}

// txtInviteWaiting tells an inviter that the invitee cannot get the
// invitation now: it waits for them, for at most wait.
func txtInviteWaiting(u URI, status string, wait time.Duration) string {
	why := ""
	if status != "" {
		why = " (" + clip(status, 64) + ")"
	}
	return "*** <" + u.String() + "> cannot be reached now" + why + ": the invitation waits for them for up to " +
		txtSpan(wait) + ", and you will be told whether it reached them"
}

func txtInviteDelivered(u URI, waited time.Duration) string {
	return "*** the invitation reached <" + u.String() + "> after waiting " + txtSpan(waited) + " for them"
}

func txtInviteExpired(u URI, waited time.Duration) string {
	return "*** <" + u.String() + "> could not be reached for " + txtSpan(waited) + ": the invitation was withdrawn"
}

// txtSpan says a duration as people do: its two largest units, to the
// nearest second ("10 minutes", "1 hour 30 minutes", "45 seconds").
func txtSpan(d time.Duration) string {
	d = d.Round(time.Second)
	units := []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}}
	var parts []string
	for _, u := range units {
		if n := int64(d / u.d); n > 0 && len(parts) < 2 {
			d -= time.Duration(n) * u.d
			p := strconv.FormatInt(n, 10) + " " + u.name
			if n > 1 {
				p += "s"
			}
			parts = append(parts, p)
		} else if len(parts) > 0 {
			break // "1 hour 5 seconds" says less than it seems: stop at a gap
		}
	}
	if len(parts) == 0 {
		return "less than a second"
	}
	return strings.Join(parts, " ")
}

func txtInviteWithdrawn(room URI) string {
	return "Your invitation to " + room.String() + " has been withdrawn"
}

func txtWithdrawn(u URI) string { return "*** the invitation to <" + u.String() + "> was withdrawn" }

func txtDeclinedYou(room URI) string { return "You declined the invitation to " + room.String() }

func txtDeclined(u URI) string { return "*** <" + u.String() + "> declined the invitation" }

func txtAddedYou(by URI) string { return "*** <" + by.String() + "> added you to the room" }

func roleNoun(r Role) string {
	switch r {
	case RoleOwner:
		return "the owner"
	case RoleAdmin:
		return "an admin"
	}
	return "a member"
}

func txtRole(u URI, r Role) string { return "*** <" + u.String() + "> is now " + roleNoun(r) }

const txtUnavailable = "The room service cannot save changes right now; please try again later"

const txtInDoubt = "The room service could not confirm this change: the database stopped answering while saving it. Check with #list, and send it again if it is not there"

const txtConflict = "The room service could not save this change: it conflicts with data already stored. The operator has been told"

// memberList is the #list reply, as the native module writes it: the owner
// first marked '*', then the others newest first (the native order),
// admins marked '~', pending invitees left out; LF between lines. Members
// with voice are marked '+', as IRC marks them.
func memberList(r *Room) string {
	var b strings.Builder
	b.WriteString(txtMembers)
	line := func(m Member) {
		b.WriteByte('\n')
		switch {
		case m.Owner():
			b.WriteByte('*')
		case m.Admin():
			b.WriteByte('~')
		case r.Voiced(m.URI):
			b.WriteByte('+')
		}
		b.WriteString(m.URI.String())
	}
	owner, hasOwner := r.Owner()
	if hasOwner {
		line(owner)
	}
	for i := len(r.members) - 1; i >= 0; i-- {
		if m := r.members[i]; m.Active() && !(hasOwner && i == 0) {
			line(m)
		}
	}
	return b.String()
}

// #rooms: "Rooms:", then one roomLine per room, then txtMore if capped.
const (
	txtRooms   = "Rooms:"
	txtNoRooms = "No rooms"
)

// roomLine is "sip:chat-1@example.com (3 members, private, owner)": the
// active member count, whether the room is private (and moderated), and
// the sender's role there (or "invited") when it is in the room.
func roomLine(b *strings.Builder, r *Room, m Member, member bool) {
	b.WriteString(r.URI.String() + " (")
	if r.Private() && (!member || m.Invited()) {
		// Who is in a private room is for its members: an invitee learns
		// that it exists, which the invitation told them, and no more.
		b.WriteString("private")
	} else {
		n := r.ActiveCount()
		b.WriteString(strconv.Itoa(n) + " member")
		if n != 1 {
			b.WriteByte('s')
		}
		if r.Private() {
			b.WriteString(", private")
		}
	}
	if r.Moderated() {
		b.WriteString(", moderated")
	}
	switch {
	case !member:
	case m.Invited():
		b.WriteString(", invited")
	default:
		b.WriteString(", " + m.Role().String())
	}
	b.WriteByte(')')
}

func txtMore(n int) string { return "... and " + strconv.Itoa(n) + " more" }

// Refusals: each says why nothing happened.

func txtNoSuchRoom(room URI) string { return "Room " + room.String() + " does not exist" }

func txtNotMember(room URI) string { return "You are not a member of " + room.String() }

func txtPending(sc string, room URI) string {
	return "You are invited to " + room.String() + " but have not joined yet: send '" + sc + "accept' first"
}

func txtPendingExit(sc string, room URI) string {
	return "You have not joined " + room.String() + ": send '" + sc + "deny' to decline the invitation"
}

func txtNotInvited(room URI) string { return "You have no pending invitation to " + room.String() }

func txtAlreadyMember(room URI) string { return "You are already a member of " + room.String() }

func txtAlreadyJoined(sc string, room URI) string {
	return "You are already a member of " + room.String() + ": send '" + sc + "exit' to leave it"
}

func txtPrivate(room URI) string {
	return "Room " + room.String() + " is private: you need an invitation to join it"
}

func txtIsMember(u, room URI) string { return u.String() + " is already a member of " + room.String() }

func txtIsInvited(u, room URI) string {
	return u.String() + " has already been invited to " + room.String()
}

func txtIsNotMember(u, room URI) string { return u.String() + " is not a member of " + room.String() }

func txtIsPending(u, room URI) string {
	return u.String() + " has not accepted the invitation to " + room.String() + " yet"
}

func txtIsRole(u URI, r Role) string { return u.String() + " is already " + roleNoun(r) }

func txtNeedAdmin(sc, cmd string, room URI) string {
	return "Only the owner or an admin of " + room.String() + " can use " + sc + cmd
}

func txtNeedOwner(sc, cmd string, room URI) string {
	return "Only the owner of " + room.String() + " can use " + sc + cmd
}

// txtNeedOwnerForAdmin: verb is "remove" or "ban".
func txtNeedOwnerForAdmin(room URI, verb string) string {
	return "Only the owner of " + room.String() + " can " + verb + " an admin"
}

// txtOwnerExempt: done is "removed" or "banned".
func txtOwnerExempt(done string) string { return "The owner of a room cannot be " + done }

func txtRemoveSelf(sc string) string {
	return "You cannot remove yourself: send '" + sc + "exit' to leave the room"
}

func txtDemoteOwner(sc string) string {
	return "The owner cannot be demoted: make another member the owner with '" + sc + "modify <user> owner'"
}

func txtMissingArg(usage string) string { return "Missing argument: usage " + usage }

func txtTooMany(usage string) string { return "Too many parameters: usage " + usage }

func txtBadOption(opt, usage string) string {
	return "Unknown option '" + clip(opt, 32) + "': usage " + usage
}

func txtBadRoom(arg, reason string) string { return "Bad room '" + clip(arg, 64) + "': " + reason }

func txtBadUser(arg, reason string) string { return "Bad user '" + clip(arg, 64) + "': " + reason }

func txtBadRole(arg string) string {
	return "Bad role '" + clip(arg, 32) + "': use owner, admin or member"
}

func txtRoomTooLong(room URI) string {
	return "The room address " + clip(room.String(), 80) + " is longer than " +
		strconv.Itoa(MaxFieldLen) + " characters"
}

func txtUserTooLong(u URI) string {
	return "The address " + clip(u.String(), 80) + " is too long: user and domain are limited to " +
		strconv.Itoa(MaxFieldLen) + " characters each"
}

func txtSenderTooLong() string {
	return "Your address is too long: user and domain are limited to " +
		strconv.Itoa(MaxFieldLen) + " characters each"
}

func txtReserved(room URI) string {
	return "The name " + room.User + " is reserved for the room manager"
}

// txtNameRoom answers a command that needs a room but was sent to the
// manager without one; usage shows the room as required.
func txtNameRoom(manager URI, usage string) string {
	return manager.String() + " is the room manager, not a room: name the room, as in '" + usage + "'"
}

func txtManagerChat(sc string, manager URI) string {
	return manager.String() + " is the room manager, not a room: send '" + sc + "help' for the commands"
}

const txtEmpty = "Empty message not sent"

func txtChatTooLong(max int) string {
	return "Message not sent: it is longer than " + strconv.Itoa(max) + " bytes"
}

func txtBadType(ct string) string {
	return "Message not sent: only text can be sent to the room, not '" + clip(ct, 64) + "'"
}

// clip makes s fit to echo in a reply: control bytes become '?', and past
// max bytes it is cut on a character boundary and "..." marks the cut.
func clip(s string, max int) string {
	cut := len(s) > max
	if cut {
		s = s[:max]
		// Drop the last character if the cut split it.
		for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
			if utf8.RuneStart(s[i]) {
				if !utf8.FullRuneInString(s[i:]) {
					s = s[:i]
				}
				break
			}
		}
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		b := []byte(s)
		for i, c := range b {
			if c < 0x20 || c == 0x7f {
				b[i] = '?'
			}
		}
		s = string(b)
	}
	if cut {
		return s + "..."
	}
	return s
}

// Limits an operator set (Config.MaxMembers, MaxOwnedRooms) and the flood
// control of the daemon.

func txtRoomFull(room URI, max int) string {
	return "Room " + room.String() + " is full: it has the maximum of " + strconv.Itoa(max) + " members"
}

func txtTooManyRooms(max int) string {
	return "You own " + strconv.Itoa(max) + " rooms already, the most allowed: destroy one first"
}

// The room and member policy (Config.RoomPrefix, Domains, MemberDomains).

func txtRoomPrefix(sc string, room URI, prefix string) string {
	return "Room " + room.String() + " not created: room names here start with '" + prefix +
		"', as in '" + sc + "create " + prefix + "team'"
}

func txtRoomOnlyPrefix(sc string, room URI, prefix string) string {
	return "Room " + room.String() + " not created: a room name needs more than '" + prefix +
		"', as in '" + sc + "create " + prefix + "team'"
}

func txtRoomDomain(room URI, domains []string) string {
	return "Room " + room.String() + " not created: rooms can only be created in " + orList(domains)
}

func txtMemberDomain(u, room URI, verb string, extra []string) string {
	return u.String() + " cannot be " + verb + ": members of " + room.String() + " must be in " +
		orList(append([]string{room.Host}, extra...))
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// Moderation: reasons, bans, moderated rooms and voice.

func txtReasonTooLong() string {
	return "Reason too long: it is limited to " + strconv.Itoa(MaxReasonLen) + " bytes"
}

const txtBannedYou = "You have been banned from this room"

func txtBanned(u URI) string { return "*** <" + u.String() + "> has been banned" }

func txtUnbanned(u URI) string { return "*** <" + u.String() + "> is no longer banned" }

func txtBanSelf(sc string) string {
	return "You cannot ban yourself: send '" + sc + "exit' to leave the room"
}

func txtIsBanned(u, room URI) string { return u.String() + " is already banned from " + room.String() }

func txtNotBanned(u, room URI) string { return u.String() + " is not banned from " + room.String() }

// txtBannedFrom answers a banned user's #join, #accept and chat.
func txtBannedFrom(room URI, b Ban) string {
	return withReason("You are banned from "+room.String(), b.Reason)
}

// txtBannedUser answers an invitation or addition of a banned user.
func txtBannedUser(sc string, u, room URI) string {
	return u.String() + " is banned from " + room.String() + ": send '" + sc + "unban " + u.AOR() + "' first"
}

func txtNoBans(room URI) string { return "Nobody is banned from " + room.String() }

func txtBansHead(room URI, n int) string {
	return "Banned from " + room.String() + " (" + plural(n, "user") + "):"
}

// banLine is one line of #bans: "sip:bob@h (by sip:alice@h): reason".
func banLine(b Ban) string {
	by := "the operator"
	if !b.By.IsZero() {
		by = b.By.String()
	}
	s := b.User.String() + " (by " + by + ")"
	if b.Reason != "" {
		s += ": " + b.Reason
	}
	return s
}

const whoSpeaks = "only the owner, admins and members with voice may speak"

// txtModeration tells the room that by (zero: an operator) turned its
// moderation on or off.
func txtModeration(by URI, on bool) string {
	switch {
	case on && by.IsZero():
		return "*** the room is now moderated: " + whoSpeaks
	case on:
		return "*** <" + by.String() + "> made the room moderated: " + whoSpeaks
	case by.IsZero():
		return "*** the room is no longer moderated: every member may speak"
	}
	return "*** <" + by.String() + "> ended the moderation: every member may speak"
}

func txtModerationIs(room URI, on bool) string {
	if on {
		return room.String() + " is already moderated"
	}
	return room.String() + " is not moderated"
}

// txtModeratedRoom answers a chat line of a member without voice, once
// per line.
func txtModeratedRoom(room URI) string {
	return "Room " + room.String() + " is moderated: " + whoSpeaks + "; your message was not sent"
}

func txtVoiced(u URI) string { return "*** <" + u.String() + "> has been given voice" }

func txtDevoiced(u URI) string { return "*** <" + u.String() + "> no longer has voice" }

func txtVoiceIs(u URI, has bool) string {
	if has {
		return u.String() + " has voice already"
	}
	return u.String() + " has no voice"
}

func txtAlwaysSpeaks(u URI, r Role) string {
	return u.String() + " is " + roleNoun(r) + " and may always speak"
}

// TxtRateLimited is sent once when a sender goes over the rate limit or
// the fan-out budget (the MESSAGEs its requests made imcd send); what they
// send until the limit lets them through again is dropped.
const TxtRateLimited = "You are sending messages too fast: what you send is dropped until you slow down"

// History and topics.

const txtNoHistoryKept = "This server keeps no history of the rooms"

const txtNoTopicsKept = "This server keeps no room topics"

func txtRoomOnly(manager URI, usage string) string {
	return manager.String() + " is the room manager, not a room: send '" + usage + "' to the room itself"
}

func txtHistoryUsage(usage string, max int) string {
	return "Usage: " + usage + ", n from 1 to " + strconv.Itoa(max)
}

func txtNoHistory(room URI) string { return "Nothing has been said in " + room.String() + " yet" }

func txtHistoryHead(room URI, n int, total int64) string {
	if int64(n) >= total {
		return "The " + plural(n, "line") + " said in " + room.String() + ":"
	}
	return "The last " + strconv.Itoa(n) + " of " + strconv.FormatInt(total, 10) + " lines said in " + room.String() + ":"
}

func txtHistoryOnJoin(n int, total int64) string {
	if int64(n) >= total {
		return "What was said before you joined:"
	}
	return "What was said before you joined (the last " + strconv.Itoa(n) + " of " + strconv.FormatInt(total, 10) + " lines):"
}

func txtCatchUp(room URI, total, skipped int64) string {
	s := "While you were unreachable, " + plural64(total, "line") + " were said in " + room.String()
	if skipped > 0 {
		return s + "; the first " + strconv.FormatInt(skipped, 10) + " are left out:"
	}
	return s + ":"
}

func txtTopic(t Topic) string {
	if t.Text == "" {
		return "No topic is set"
	}
	s := "Topic: " + t.Text
	if !t.SetBy.IsZero() {
		s += " (set by " + t.SetBy.String()
		if !t.At.IsZero() {
			s += " on " + t.At.UTC().Format(historyTimeLayout) + " UTC"
		}
		s += ")"
	}
	return s
}

func txtTopicNotAllowed(room URI) string {
	return "Only the owner and the admins of " + room.String() + " may set its topic"
}

func txtTopicTooLong(max int) string {
	return "Topic not set: it is longer than " + strconv.Itoa(max) + " bytes"
}

func txtTopicSet(u URI, text string) string { return "*** <" + u.String() + "> set the topic: " + text }

func txtTopicCleared(u URI) string { return "*** <" + u.String() + "> cleared the topic" }

func plural(n int, word string) string { return plural64(int64(n), word) }

func plural64(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.FormatInt(n, 10) + " " + word + "s"
}

// Delivery (pkg/delivery, through the daemon): a room too busy to take a
// line, and what a member missed while unreachable.

func txtBusy(room URI) string {
	return "Room " + room.String() + " is busy: your message was not sent; please send it again in a moment"
}

func txtBusyApplied(sc, cmd string, room URI) string {
	return "Room " + room.String() + " is busy: your " + sc + cmd + " was done, but not everybody could be told"
}

func txtBusyCommand(sc, cmd string) string {
	return "The room service is busy: your " + sc + cmd + " could not be answered; please send it again in a moment"
}

func txtMissed(n int) string {
	return "*** you missed " + plural(n, "message") + " in this room while you could not be reached"
}
