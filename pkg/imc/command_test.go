package imc

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	f := func(body string, start byte, want string) {
		t.Helper()
		c, ok := ParseCommand(body, start)
		got := "chat"
		if ok {
			got = "[" + c.Name + "]"
			for _, p := range c.Params {
				got += " " + p
			}
			if c.TooMany {
				got += " +"
			}
		}
		if got != want {
			t.Errorf("ParseCommand(%q, %q) = %s, want %s", body, start, got, want)
		}
	}
	f("", '#', "chat")
	f("hello", '#', "chat")
	f(" #join", '#', "chat")
	f("##join", '#', "chat")
	f("#", '#', "[]")
	f("#\n", '#', "[]")
	f("# join", '#', "[] join")
	f("#join", '#', "[join]")
	f("#JoIn", '#', "[join]")
	f("#join  a\t b ", '#', "[join] a b")
	f("#join a\r\n#exit b", '#', "[join] a")
	f("#join a\nb", '#', "[join] a")
	f("#a 1 2 3 4 5", '#', "[a] 1 2 3 4 5")
	f("#a 1 2 3 4 5 6", '#', "[a] 1 2 3 4 5 +")
	f("#a 1 2 3 4 5\t", '#', "[a] 1 2 3 4 5")
	f("*join x", '*', "[join] x")
	f("#join x", '*', "chat")
	f("**x", '*', "chat")
	f("#ÉTÉ x", '#', "[ÉtÉ] x") // ASCII only, like the native strncasecmp
	f("#a\x00b c", '#', "[a\x00b] c")
}

func TestChatText(t *testing.T) {
	for body, want := range map[string]string{"hi": "hi", "##hi": "#hi", "##": "#", "#": "#", "": "", "#x": "#x"} {
		if got := ChatText(body, '#'); got != want {
			t.Errorf("ChatText(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestParseURI(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		u, err := ParseURI(in)
		got := ""
		if err != nil {
			got = "error: " + err.(*URIError).Reason
		} else {
			got = u.User + " @ " + u.Host
		}
		if got != want {
			t.Errorf("ParseURI(%q) = %s, want %s", in, got, want)
		}
	}
	f("sip:alice@example.com", "alice @ example.com")
	f("SIPS:Alice@Example.COM:5061;transport=tls?x=y", "Alice @ Example.COM")
	f("alice@127.0.0.1:5060", "alice @ 127.0.0.1")
	f("sip:alice@[::1]:5060", "alice @ [::1]")
	f("sip:a%41b@h", "a%41b @ h")
	f("sip:a.b-c_d!~*'()&=+$,@h", "a.b-c_d!~*'()&=+$, @ h")
	f("sip:alice@h;transport=tcp", "alice @ h")
	f("sip:h", "error: no user part")
	f("sip:@h", "error: empty user part")
	f("sip:alice@", "error: empty host")
	f("tel:+1234", "error: scheme must be sip: or sips:")
	f("mailto:a@h", "error: scheme must be sip: or sips:")
	f("sip:alice@h:0x", "error: bad port")
	f("sip:alice@h:65536", "error: bad port")
	f("sip:alice@[::1", "error: unterminated IPv6 reference")
	f("sip:alice@[::1]x", "error: bad port")
	f("sip:al ice@h", "error: forbidden byte 0x20 in user part")
	f("sip:al\x00ice@h", "error: forbidden byte 0x00 in user part")
	f("sip:a<b@h", "error: forbidden byte 0x3c in user part")
	f("sip:a\"b@h", "error: forbidden byte 0x22 in user part")
	f("sip:a\\b@h", "error: forbidden byte 0x5c in user part")
	f("sip:a%4@h", "error: bad %-escape in user part")
	f("sip:a@h\r\n", "error: bad host")
	f("sip:a@h>x", "error: bad host")
	f("sip:a@-h", "error: bad host")
	f("sip:a@h;x=\r\n", "error: forbidden byte 0x0d in parameters")
	f("sip:a@h;x=<y>", "error: forbidden byte 0x3c in parameters")
	f("sip:sip:native-1@127.0.0.1@127.0.0.1", "error: forbidden byte 0x3a in user part")
	f("sip:é@h", "error: forbidden byte 0xc3 in user part")

	u, _ := ParseURI("sip:Alice@Example.COM:5060")
	if u.String() != "sip:Alice@Example.COM" || u.AOR() != "Alice@Example.COM" || u.Key() != "alice@example.com" {
		t.Errorf("forms: %s %s %s", u.String(), u.AOR(), u.Key())
	}
	if !u.Equal(URI{"ALICE", "example.com"}) || u.Equal(URI{"alice", "example.org"}) || u.IsZero() || !(URI{}).IsZero() {
		t.Error("Equal/IsZero")
	}
}

func TestParseArg(t *testing.T) {
	f := func(arg, want string) {
		t.Helper()
		u, err := ParseArg(arg, "dflt")
		got := u.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseArg(%q) = %s, want %s", arg, got, want)
		}
	}
	f("chat-1", "sip:chat-1@dflt")
	f("Chat-1@Other", "sip:Chat-1@Other")
	f("sip:chat-1@other:5060", "sip:chat-1@other")
	f("sips:chat-1@other", "sip:chat-1@other")
	f("<sip:chat-1@other>", "sip:chat-1@other")
	f("<chat-1>", "sip:chat-1@dflt")
	f("<>", "error")
	f("sip:chat-1", "error")
	f("chat-1:5060", "error")
	f("chat 1", "error")
	f("", "error")
	if _, err := ParseArg("x", ""); err == nil {
		t.Error("ParseArg without a default host")
	}
	if _, err := NewURI("a", "h"); err != nil {
		t.Error(err)
	}
	if _, err := NewURI("a;b", "h"); err == nil || !strings.Contains(err.Error(), `"a;b@h"`) {
		t.Errorf("NewURI(a;b): %v", err)
	}
}

func TestClip(t *testing.T) {
	f := func(s string, max int, want string) {
		t.Helper()
		if got := clip(s, max); got != want {
			t.Errorf("clip(%q, %d) = %q, want %q", s, max, got, want)
		}
	}
	f("abc", 3, "abc")
	f("abcd", 3, "abc...")
	f("a\r\nb", 10, "a??b")
	f("aé", 3, "aé")
	f("aéb", 3, "aé...")
	f("aéb", 2, "a...")
	f("a日b", 3, "a...")
	f("a日b", 4, "a日...")
	f("\xff\xfe\xfd\xfc\xfb", 2, "\xff\xfe...")
}
