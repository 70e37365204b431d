package imc

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCommandsDocConversations plays the conversations of docs/commands.md
// (its "conversation" blocks, each in rooms of its own, with the default
// configuration at example.com) and fails when a MESSAGE imcd sends is not
// the one the page shows, in order.
func TestCommandsDocConversations(t *testing.T) {
	b, err := os.ReadFile("../../docs/commands.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```conversation\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("docs/commands.md has %d conversations, want the ban and the moderated room at least", len(blocks))
	}
	for i, block := range blocks {
		block, _, _ = strings.Cut(block, "```")
		playConversation(t, i+1, block)
	}
}

// playConversation plays one block: "user → room: body" sends a MESSAGE;
// the "  room → user: body" lines under it are what imcd must send for it,
// and a more indented line goes on the body above it.
func playConversation(t *testing.T, n int, block string) {
	e := NewEngine(DefaultConfig())
	rs := NewRooms()
	at := func(s string) string { return "sip:" + s + "@example.com" }
	var req string // the request being checked, "" before the first
	var want, got []string
	check := func() {
		t.Helper()
		if req != "" {
			eq(t, "conversation "+strconv.Itoa(n)+": "+req, got, want)
		}
	}
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "    "):
			if len(want) == 0 {
				t.Fatalf("conversation %d: a continuation without a MESSAGE above: %q", n, line)
			}
			want[len(want)-1] += "\n" + strings.TrimPrefix(line, "    ")
		case strings.HasPrefix(line, "  "):
			want = append(want, strings.TrimPrefix(line, "  "))
		default:
			check()
			from, rest, ok1 := strings.Cut(line, " → ")
			to, body, ok2 := strings.Cut(rest, ": ")
			if !ok1 || !ok2 {
				t.Fatalf("conversation %d: unreadable line %q", n, line)
			}
			in, err := e.Prepare(Request{From: at(from), RURI: at(to), To: at(to), Body: body, ContentType: "text/plain", CallID: cid})
			if err != nil {
				t.Fatal(err)
			}
			res := e.Handle(rs, in)
			checkResult(t, res)
			rs.Apply(res.Changes)
			req, want, got = line, nil, nil
			for _, x := range res.Notices {
				if x.From.Host != "example.com" || x.To.Host != "example.com" {
					t.Errorf("conversation %d: %s: a MESSAGE outside example.com: %+v", n, line, x)
				}
				got = append(got, x.From.User+" → "+x.To.User+": "+x.Body)
			}
		}
	}
	check()
}
