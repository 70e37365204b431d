package imc

import (
	"errors"
	"strings"
	"testing"
)

// The tests live in domain "h" with two rooms of the same shape:
//
//	pub  (public)  alice owner, adam admin, mike member, ivy pending invitee
//	priv (private) the same
//
// zed is a stranger and "gone" a room that does not exist. Results are
// rendered as lines (see render) and compared exactly.

const cid = "cid-1" // the Call-ID of every test request

// addr turns a test shorthand into a URI string: "alice" is sip:alice@h,
// "mgr" the manager; anything with '@' or ':' is used as is.
func addr(s string) string {
	switch {
	case s == "mgr":
		return "sip:chat-manager@h"
	case strings.ContainsAny(s, "@:"):
		return s
	}
	return "sip:" + s + "@h"
}

func uri(t testing.TB, s string) URI {
	t.Helper()
	u, err := ParseURI(addr(s))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fixture returns the two standard rooms.
func fixture(t testing.TB) *Rooms {
	rs := NewRooms()
	for _, spec := range []struct {
		name  string
		flags RoomFlags
	}{{"pub", 0}, {"priv", RoomPrivate}} {
		rs.Put(NewRoom(uri(t, spec.name), spec.flags, []Member{
			{uri(t, "alice"), MemberOwner},
			{uri(t, "adam"), MemberAdmin},
			{uri(t, "mike"), 0},
			{uri(t, "ivy"), MemberInvited},
		}))
	}
	return rs
}

// world is an engine and its rooms; send runs one request end to end the
// way the daemon does: Prepare, Handle, then Apply the changes.
type world struct {
	t  testing.TB
	e  *Engine
	rs *Rooms
	ct string // Content-Type of the next requests
}

func newWorld(t testing.TB, cfg Config) *world {
	return &world{t: t, e: NewEngine(cfg), rs: fixture(t)}
}

func (w *world) handle(from, to, body string) Result {
	w.t.Helper()
	in, err := w.e.Prepare(Request{From: addr(from), RURI: addr(to), To: addr(to), Body: body, ContentType: w.ct, CallID: cid})
	if err != nil {
		w.t.Fatalf("Prepare(%s -> %s %q): %v", from, to, body, err)
	}
	res := w.e.Handle(w.rs, in)
	if res.Command != in.Command() {
		w.t.Errorf("%q: Result.Command %q, Input.Command %q", body, res.Command, in.Command())
	}
	checkResult(w.t, res)
	w.rs.Apply(res.Changes)
	return res
}

func (w *world) send(from, to, body string) []string {
	w.t.Helper()
	return render(w.handle(from, to, body))
}

// render shows a Result as lines: the outcome, each change, each notice.
func render(res Result) []string {
	out := []string{res.Outcome.String()}
	for _, c := range res.Changes {
		out = append(out, c.String())
	}
	for _, n := range res.Notices {
		out = append(out, renderNotice(n))
	}
	return out
}

// renderNotice is "room@h>to@h: body", with " re" before the colon when the
// notice answers the test request, and the Content-Type and invitation
// after the body when there is one.
func renderNotice(n Notice) string {
	s := n.From.AOR() + ">" + n.To.AOR()
	switch n.InReplyTo {
	case "":
	case cid:
		s += " re"
	default:
		s += " re=" + n.InReplyTo
	}
	s += ": " + n.Body
	if n.ContentType != textPlain {
		s += " [ct=" + n.ContentType + "]"
	}
	if inv := n.Invitation; inv != nil {
		s += " [inv " + inv.Room.AOR() + " " + inv.Invitee.AOR() + " by " + inv.Inviter.AOR() + "]"
	}
	return s
}

func eq(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") && len(got) == len(want) {
		return
	}
	t.Errorf("%s:\n got: %s\nwant: %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
}

// checkResult asserts what must hold for every Result: addresses safe to
// paste into headers, non-empty bodies and content types.
func checkResult(t testing.TB, res Result) {
	t.Helper()
	if res.Command == "" {
		t.Errorf("empty Result.Command")
	}
	for _, n := range res.Notices {
		for _, u := range []URI{n.From, n.To} {
			if bad := unsafeURI(u); bad != "" {
				t.Errorf("notice address %q: %s", u.String(), bad)
			}
		}
		if n.Body == "" {
			t.Errorf("empty notice body: %+v", n)
		}
		if !safeHeaderValue(n.ContentType) || n.ContentType == "" {
			t.Errorf("unsafe Content-Type %q", n.ContentType)
		}
		for i := 0; i < len(n.InReplyTo); i++ {
			if c := n.InReplyTo[i]; c <= ' ' || c >= 0x7f {
				t.Errorf("unsafe InReplyTo %q", n.InReplyTo)
				break
			}
		}
	}
	for _, c := range res.Changes {
		for _, u := range []URI{c.Room, c.Member} {
			if c.Member.IsZero() && u == c.Member {
				continue
			}
			if bad := unsafeURI(u); bad != "" {
				t.Errorf("change %v address: %s", c, bad)
			}
		}
	}
}

// unsafeURI says what is wrong with u as a header value, or "".
func unsafeURI(u URI) string {
	if u.User == "" || u.Host == "" {
		return "empty user or host"
	}
	s := u.String()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || strings.IndexByte(`<>";\`, c) >= 0 {
			return "forbidden byte " + string(rune(c))
		}
	}
	return ""
}

func safeHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f || strings.IndexByte(`<>"\`, c) >= 0 {
			return false
		}
	}
	return len(s) <= 255
}

// members shows a room's state as "alice=1 adam=2 ..." in room order, or
// "-" when it does not exist.
func members(rs *Rooms, room string) string {
	r := rs.Room(strings.TrimPrefix(strings.TrimPrefix(addr(room), "sip:"), "sips:"))
	if r == nil {
		return "-"
	}
	var parts []string
	for _, m := range r.Members() {
		parts = append(parts, m.URI.User+"="+string(rune('0'+m.Flags)))
	}
	return strings.Join(parts, " ")
}

// nativeRules is DefaultConfig with the room and member policy off, as
// the native module has none: these tests were written with its free room
// names (pub, new, native-1) and members from any domain. policy_test.go
// tests the policy.
func nativeRules() Config {
	cfg := DefaultConfig()
	cfg.RoomPrefix = ""
	cfg.Domains = []string{AnyDomain}
	cfg.MemberDomains = []string{AnyDomain}
	return cfg
}

// fresh returns a check that runs each request on a fresh world of cfg and
// compares the rendered Result with want.
func fresh(t *testing.T, cfg Config) func(from, to, body string, want ...string) {
	return func(from, to, body string, want ...string) {
		t.Helper()
		newWorld(t, cfg).expect(from, to, body, want...)
	}
}

// expect runs one request on w and compares the rendered Result with want.
func (w *world) expect(from, to, body string, want ...string) {
	w.t.Helper()
	eq(w.t, from+" "+to+" "+body, w.send(from, to, body), want)
}

// adminOK runs an operator action on w, which must succeed with the
// rendered Result want (its notices answering nobody), and applies it.
func (w *world) adminOK(op AdminOp, want ...string) {
	w.t.Helper()
	res, err := w.e.Admin(w.rs, op)
	if err != nil {
		w.t.Fatalf("Admin(%+v): %v", op, err)
	}
	if res.Command != op.Kind.String() {
		w.t.Errorf("Command %q, want %q", res.Command, op.Kind)
	}
	checkResult(w.t, res)
	for _, n := range res.Notices {
		if n.InReplyTo != "" {
			w.t.Errorf("operator notice with InReplyTo: %+v", n)
		}
	}
	eq(w.t, op.Kind.String(), render(res), want)
	w.rs.Apply(res.Changes)
}

// adminFails runs an operator action on w, which must fail with sentinel
// and msg in its error, and produce nothing.
func (w *world) adminFails(op AdminOp, sentinel error, msg string) {
	w.t.Helper()
	res, err := w.e.Admin(w.rs, op)
	if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), msg) {
		w.t.Errorf("Admin(%+v): %v, want %v containing %q", op, err, sentinel, msg)
	}
	if len(res.Changes)+len(res.Notices) != 0 {
		w.t.Errorf("Admin(%+v) failed but returned %v", op, render(res))
	}
}
