package opensips

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// decodeUsrlocDatagram decodes one event notification as received.
func decodeUsrlocDatagram(p *fastjson.Parser, data []byte) (UsrlocEvent, error) {
	var ev UsrlocEvent
	v, err := p.ParseBytes(data)
	if err != nil {
		return ev, err
	}
	return ev, DecodeUsrlocEvent(string(v.GetStringBytes("method")), v.Get("params"), &ev)
}

// TestDecodeCapturedUsrlocEvents replays every capture of events/usrloc.
func TestDecodeCapturedUsrlocEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(wire, "events/usrloc/*.json"))
	if err != nil || len(files) != 11 {
		t.Fatalf("captured usrloc events: %d files, %v", len(files), err)
	}
	aor := func(name string) UsrlocEvent {
		return UsrlocEvent{Name: name, Table: "location", AOR: "zed@127.0.0.1", Q: -1}
	}
	contact := func(name, port string, expires int64, callid string) UsrlocEvent {
		ev := aor(name)
		ev.Contact, ev.Expires, ev.CallID, ev.CSeq = "sip:zed@127.0.0.1:"+port, time.Unix(expires, 0), callid, 1
		ev.UserAgent, ev.Socket = "n/a", "udp:127.0.0.1:5060"
		return ev
	}
	var p fastjson.Parser
	i := 0
	f := func(want UsrlocEvent, registers, unregisters bool) {
		t.Helper()
		data, err := os.ReadFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(files[i])
		i++
		ev, err := decodeUsrlocDatagram(&p, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ev != want {
			t.Fatalf("%s:\n got %+v\nwant %+v", name, ev, want)
		}
		if ev.Registers() != registers || ev.Unregisters() != unregisters || ev.URI("") != "sip:zed@127.0.0.1" {
			t.Fatalf("%s: registers %v, unregisters %v, URI %s", name, ev.Registers(), ev.Unregisters(), ev.URI(""))
		}
	}
	f(aor(EventULAORInsert), true, false)
	f(contact(EventULContactInsert, "5601", 1795949375, "78d4bcf9fb5b4a72@lab"), true, false)
	f(contact(EventULContactUpdate, "5601", 1795949375, "d1a90618de0b8b2e@lab"), true, false)
	f(contact(EventULContactInsert, "5602", 1795949376, "a38c85e10b5de4cc@lab"), true, false)
	f(contact(EventULContactDelete, "5601", 1795949375, "d1a90618de0b8b2e@lab"), false, false)
	f(contact(EventULContactDelete, "5602", 1795949376, "a38c85e10b5de4cc@lab"), false, false)
	f(aor(EventULAORDelete), false, true)
	f(aor(EventULAORInsert), true, false)
	f(contact(EventULContactInsert, "5603", 1795949329, "53aaa9c703fa9e74@lab"), true, false)
	f(contact(EventULContactDelete, "5603", 1795949329, "53aaa9c703fa9e74@lab"), false, false)
	f(aor(EventULAORDelete), false, true)
}

// TestDecodeUsrlocEventErrors: what the decoder refuses, and why.
func TestDecodeUsrlocEventErrors(t *testing.T) {
	var p fastjson.Parser
	f := func(data, param string) {
		t.Helper()
		_, err := decodeUsrlocDatagram(&p, []byte(data))
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != param || !errors.Is(err, ErrBadEvent) {
			t.Fatalf("%s: %v, want an error on %q", data, err, param)
		}
	}
	f(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT"}`, "params")
	f(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":["location","zed@127.0.0.1"]}`, "params")
	f(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":{"aor":"zed@127.0.0.1"}}`, "domain")
	f(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":{"domain":"location","aor":null}}`, "aor")
	f(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":{"domain":"location","aor":"@127.0.0.1"}}`, "aor")
	f(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":{"domain":"location","aor":"zed@"}}`, "aor")
	f(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":{"domain":"location","aor":"zed@127.0.0.1","aor":"x@y"}}`, "aor")
	f(`{"jsonrpc":"2.0","method":"E_UL_CONTACT_INSERT","params":{"domain":"location","aor":"zed@127.0.0.1"}}`, "uri")
	f(`{"jsonrpc":"2.0","method":"E_UL_CONTACT_INSERT","params":{"domain":"location","aor":"zed@127.0.0.1","uri":"sip:z@h","expires":"1795949375"}}`, "expires")
	f(`{"jsonrpc":"2.0","method":"E_UL_CONTACT_INSERT","params":{"domain":"location","aor":"zed@127.0.0.1","uri":"sip:z@h","cseq":1.5}}`, "cseq")
	f(`{"jsonrpc":"2.0","method":"E_UL_CONTACT_INSERT","params":{"domain":"location","aor":"zed@127.0.0.1","uri":7}}`, "uri")

	// usrloc's use_domain off: the AOR is the user alone, and the caller
	// names the domain.
	ev, err := decodeUsrlocDatagram(&p, []byte(`{"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":{"domain":"location","aor":"zed"}}`))
	if err != nil || ev.HasDomain() || ev.URI("example.com") != "sip:zed@example.com" || ev.URI("") != "" {
		t.Fatalf("AOR without domain: %+v %v, URI %q", ev, err, ev.URI("example.com"))
	}
	if _, err := decodeUsrlocDatagram(&p, []byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{}}`)); !errors.Is(err, ErrWrongEvent) {
		t.Fatalf("E_IMC_MESSAGE: %v", err)
	}
	// A permanent contact (expires 0) and unknown params.
	ev, err = decodeUsrlocDatagram(&p, []byte(`{"jsonrpc":"2.0","method":"E_UL_CONTACT_REFRESH","params":{"domain":"location","aor":"zed@127.0.0.1","uri":"sip:z@h","expires":0,"reason":"x","req_callid":null}}`))
	if err != nil || !ev.Expires.IsZero() || ev.Registers() || ev.Unregisters() {
		t.Fatalf("refresh: %+v %v", ev, err)
	}
	for _, name := range UsrlocEventNames() {
		if !IsUsrlocEvent(name) {
			t.Fatalf("%s is not a usrloc event", name)
		}
	}
}

// TestDecodeFakeUsrlocEvents decodes what the fake OpenSIPS raises for a
// registration, so that the fake and the decoder cannot drift apart.
func TestDecodeFakeUsrlocEvents(t *testing.T) {
	fake, err := opensipstest.Start(opensipstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	mi, err := net.Dial("udp", fake.MIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer mi.Close()
	buf := make([]byte, 65536)
	for _, name := range UsrlocEventNames() {
		mi.Write([]byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":["` + name + `","udp:` + pc.LocalAddr().String() + `",600],"id":1}`))
		mi.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := mi.Read(buf); err != nil || !strings.Contains(string(buf[:n]), `"result":"OK"`) {
			t.Fatalf("event_subscribe %s: %s %v", name, buf[:n], err)
		}
	}
	if err := fake.Register("sip:Bob@Example.com", "sip:bob@192.0.2.1:5062;transport=udp", time.Hour); err != nil {
		t.Fatal(err)
	}
	// The user part is compared exactly, the host case-insensitively.
	if err := fake.Unregister("Bob@example.com", ""); err != nil {
		t.Fatal(err)
	}
	var p fastjson.Parser
	var got []string
	for range 4 {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := decodeUsrlocDatagram(&p, buf[:n])
		if err != nil {
			t.Fatalf("%s: %v", buf[:n], err)
		}
		got = append(got, ev.Name+" "+ev.URI("")+" "+ev.Contact)
		if ev.Contact != "" && time.Until(ev.Expires) < 59*time.Minute {
			t.Fatalf("expires %v", ev.Expires)
		}
	}
	want := []string{
		"E_UL_AOR_INSERT sip:Bob@Example.com ",
		"E_UL_CONTACT_INSERT sip:Bob@Example.com sip:bob@192.0.2.1:5062;transport=udp",
		"E_UL_CONTACT_DELETE sip:Bob@Example.com sip:bob@192.0.2.1:5062;transport=udp",
		"E_UL_AOR_DELETE sip:Bob@Example.com ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzDecodeUsrlocEvent checks that no datagram makes the decoder panic and
// that what it accepts is usable. Seeds: the captured events.
func FuzzDecodeUsrlocEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(wire, "events/usrloc/*.json"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p fastjson.Parser
		ev, err := decodeUsrlocDatagram(&p, data)
		if err != nil {
			return
		}
		if !IsUsrlocEvent(ev.Name) || ev.Table == "" || !strings.Contains(ev.AOR, "@") {
			t.Fatalf("accepted %+v", ev)
		}
	})
}
