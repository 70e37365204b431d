package imc

import "strings"

// chat relays a chat line to every other active member of the room. It is
// the hot path: no maps, no fmt, one allocation for the body and one for
// the notices.
func (c *call) chat() Result {
	in := &c.in
	if in.manager {
		return c.refuse(txtManagerChat(c.e.sc, in.RURI))
	}
	r := c.lookup()
	if r == nil {
		return c.refuse(txtNoSuchRoom(in.room))
	}
	i := r.find(in.From)
	if r.mod != nil {
		if b, ok := r.Banned(in.From); ok {
			return c.refuse(txtBannedFrom(r.URI, b))
		}
	}
	if i < 0 {
		return c.refuse(txtNotMember(r.URI))
	}
	if r.members[i].Invited() {
		return c.refuse(txtPending(c.e.sc, r.URI))
	}
	if r.mod != nil && !r.MaySpeak(r.members[i]) {
		return c.refuse(txtModeratedRoom(r.URI))
	}
	ct, ok := chatContentType(in.Req.ContentType)
	if !ok {
		return c.refuse(txtBadType(in.Req.ContentType))
	}
	text := ChatText(in.Req.Body, c.e.cfg.StartChar)
	if blank(text) {
		return c.refuse(txtEmpty)
	}
	if max := c.e.cfg.MaxBody; max > 0 && len(text) > max {
		return c.refuse(txtChatTooLong(max))
	}
	n := 0
	for j, m := range r.members {
		if j != i && m.Active() {
			n++
		}
	}
	var res Result
	if n == 0 {
		res = c.ok(nil, nil)
	} else {
		body := chatLine(in.From, text)
		ns := make([]Notice, 0, n)
		for j, m := range r.members {
			if j != i && m.Active() {
				ns = append(ns, Notice{From: r.URI, To: m.URI, Body: body, ContentType: ct})
			}
		}
		res = c.ok(nil, ns)
	}
	if c.e.cfg.History {
		res.Record = &Line{Room: r.URI, Sender: in.From, ContentType: ct, Text: text}
	}
	return res
}

// chatLine is the native "<user@domain>: text", the sender's address as it
// gave it.
func chatLine(from URI, text string) string {
	var b strings.Builder
	b.Grow(len(from.User) + len(from.Host) + len(text) + 4)
	b.WriteByte('<')
	b.WriteString(from.User)
	b.WriteByte('@')
	b.WriteString(from.Host)
	b.WriteString(">: ")
	b.WriteString(text)
	return b.String()
}

func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

// chatContentType returns the Content-Type a relayed line carries, and
// false when the line is not text. The sender's own type is kept only when
// it is made of bytes that cannot break the header it is pasted into;
// otherwise the line goes out as text/plain.
func chatContentType(ct string) (string, bool) {
	if ct == "" {
		return textPlain, true
	}
	t := strings.TrimSpace(ct)
	if len(t) < 5 || !strings.EqualFold(t[:5], "text/") {
		return "", false
	}
	if safeContentType(t) {
		return t, true
	}
	return textPlain, true
}

// safeContentType reports whether t ("text/subtype[;params]") consists of
// token bytes, a single '/', and after the first ';' also '=', ';', '/'
// and spaces; at most 128 bytes.
func safeContentType(t string) bool {
	if len(t) > 128 || len(t) < 6 || t[4] != '/' {
		return false
	}
	params := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$&^_.+-", c) >= 0:
		case c == '/' && (i == 4 || params):
		case c == ';':
			if i == 5 {
				return false // "text/;..." has no subtype
			}
			params = true
		case (c == '=' || c == ' ') && params:
		default:
			return false
		}
	}
	return true
}
