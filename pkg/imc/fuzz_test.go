package imc

import (
	"errors"
	"strings"
	"testing"
)

// The fuzzers check what no input may break: no panic, and nothing that
// reaches a SIP header (a URI, a Content-Type, an In-Reply-To) carries a
// byte that could end or split it. Saved inputs are in testdata/fuzz.

func FuzzParseCommand(f *testing.F) {
	f.Add("#join chat-1", byte('#'))
	f.Add("##text", byte('#'))
	f.Add("*invite bob sip:chat-1@h\r\nmore", byte('*'))
	f.Fuzz(func(t *testing.T, body string, start byte) {
		c, ok := ParseCommand(body, start)
		if !ok {
			if len(body) > 0 && body[0] == start && !(len(body) > 1 && body[1] == start) {
				t.Fatalf("%q not a command", body)
			}
			return
		}
		if len(c.Params) > MaxParams {
			t.Fatalf("%d params", len(c.Params))
		}
		for _, w := range append([]string{c.Name}, c.Params...) {
			if strings.ContainsAny(w, " \t\r\n") {
				t.Fatalf("word %q has a blank", w)
			}
		}
		for _, p := range c.Params {
			if p == "" {
				t.Fatal("empty param")
			}
		}
		if strings.IndexFunc(c.Name, func(r rune) bool { return r >= 'A' && r <= 'Z' }) >= 0 {
			t.Fatalf("name %q not lower case", c.Name)
		}
		if !strings.EqualFold(body[1:1+len(c.Name)], c.Name) {
			t.Fatalf("name %q does not start the line %q", c.Name, body)
		}
	})
}

func FuzzParseURI(f *testing.F) {
	f.Add("sip:alice@example.com:5060;transport=tcp", "h")
	f.Add("bob", "127.0.0.1")
	f.Add("<sips:Bob@[::1]>", "h")
	f.Fuzz(func(t *testing.T, s, host string) {
		for _, parse := range []func() (URI, error){
			func() (URI, error) { return ParseURI(s) },
			func() (URI, error) { return ParseArg(s, host) },
		} {
			u, err := parse()
			if err != nil {
				if !errors.Is(err, ErrBadURI) {
					t.Fatalf("%q: error %v does not wrap ErrBadURI", s, err)
				}
				continue
			}
			if bad := unsafeURI(u); bad != "" {
				t.Fatalf("%q parsed to %q: %s", s, u.String(), bad)
			}
			v, err := ParseURI(u.String())
			if err != nil || v != u {
				t.Fatalf("%q: %q does not parse back (%v, %v)", s, u.String(), v, err)
			}
			if u.Key() != strings.ToLower(u.Key()) || !u.Equal(v) {
				t.Fatalf("%q: key %q", s, u.Key())
			}
		}
	})
}

// FuzzHandle runs any request against the standard rooms, then applies the
// result to a strict table and to memory and checks they agree.
func FuzzHandle(f *testing.F) {
	f.Add("sip:alice@h", "sip:pub@h", "#invite zed", "")
	f.Add("sip:mike@h", "sip:chat-manager@h", "#join priv", "text/plain")
	f.Add("sip:ivy@h", "sip:priv@h", "##hello", "text/html;charset=utf-8")
	f.Add("sip:adam@h", "sip:pub@h", "#topic lunch at noon", "")
	f.Add("sip:mike@h", "sip:pub@h", "#history 3", "")
	f.Add("sip:adam@h", "sip:pub@h", "#ban mike spamming links", "")
	f.Add("sip:alice@h", "sip:chat-manager@h", "#ban ivy priv", "")
	f.Add("sip:alice@h", "sip:pub@h", "#moderate on", "")
	f.Add("sip:adam@h", "sip:priv@h", "#voice mike", "")
	f.Add("sip:alice@h", "sip:pub@h", "#remove adam pub@h because", "")
	f.Fuzz(func(t *testing.T, from, ruri, body, ct string) {
		cfg := DefaultConfig()
		cfg.MaxBody = 64
		cfg.History = true
		e := NewEngine(cfg)
		rs := fixture(t)
		tb := newTable(rs)
		in, err := e.Prepare(Request{From: from, RURI: ruri, Body: body, ContentType: ct, CallID: "fuzz@h"})
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("Prepare: %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if k := in.RoomKey(); k != "" && strings.ContainsAny(k, "\r\n\x00 <>\";\\") {
			t.Fatalf("room key %q", k)
		}
		for _, res := range []Result{e.Handle(rs, in), e.Unavailable(in)} {
			checkResult(t, res)
			if len(res.Notices) == 0 && res.History == nil && (res.Command != "chat" || res.Outcome != OK) {
				t.Fatalf("%q got no answer: %+v", body, res)
			}
			if q := res.History; q != nil && (q.Last < 1 || q.Room.IsZero() || q.To.IsZero()) {
				t.Fatalf("%q: history query %+v", body, q)
			}
			if res.Outcome == Refused && (len(res.Notices) != 1 || len(res.Changes) != 0 || !res.Notices[0].To.Equal(in.From)) {
				t.Fatalf("%q: a refusal is one reply to the sender: %v", body, render(res))
			}
			if err := tb.apply(res.Changes); err != nil {
				t.Fatalf("%q: %v", body, err)
			}
			rs.Apply(res.Changes)
			if d := tb.same(rs); d != "" {
				t.Fatalf("%q: memory differs from the table: %s", body, d)
			}
			for _, n := range res.Notices {
				if n.Invitation != nil {
					fail := e.InvitationFailed(rs, *n.Invitation, "404 Not Found")
					checkResult(t, fail)
					if err := tb.apply(fail.Changes); err != nil {
						t.Fatalf("InvitationFailed: %v", err)
					}
					rs.Apply(fail.Changes)
				}
			}
		}
	})
}
