package contacts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// capturedEvent decodes one usrloc event the real OpenSIPS sent
// (testdata/opensips-wire/events/usrloc).
func capturedEvent(t *testing.T, file string) *opensips.UsrlocEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata/opensips-wire/events/usrloc", file))
	if err != nil {
		t.Fatal(err)
	}
	var p fastjson.Parser
	m, err := jsonrpc.Decode(&p, b)
	if err != nil {
		t.Fatal(err)
	}
	var ev opensips.UsrlocEvent
	if err := opensips.DecodeUsrlocEvent(string(m.Method), m.Params, &ev); err != nil {
		t.Fatal(err)
	}
	return &ev
}

func open(t *testing.T, d *Directory) *Directory {
	t.Helper()
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var zed = imc.URI{User: "zed", Host: "127.0.0.1"}

// The captured registration of zed, event by event: one contact is routed
// to, two are left to the proxy (it forks), none is not known.
func TestEventsFromTheRealOpenSIPS(t *testing.T) {
	d := open(t, &Directory{})
	route := func(want string) {
		t.Helper()
		r, ok := d.Route(zed)
		if got := r.RURI; !ok && want != "" || ok && got != want {
			t.Fatalf("route %q %v, want %q", got, ok, want)
		}
		if ok && r.Socket != "udp:127.0.0.1:5060" {
			t.Fatalf("socket %q", r.Socket)
		}
	}
	route("")
	d.Update(capturedEvent(t, "01-register-first-contact-AOR_INSERT.json"))
	route("")
	d.Update(capturedEvent(t, "02-register-first-contact-CONTACT_INSERT.json"))
	// The capture's expiry is in the past by now: expired bindings are not
	// routed to.
	d.mu.Lock()
	d.members[zed.Key()].bindings[0].Expires = time.Now().Add(time.Hour)
	d.mu.Unlock()
	route("sip:zed@127.0.0.1:5601")
	d.Update(capturedEvent(t, "03-refresh-same-contact-CONTACT_UPDATE.json"))
	route("") // refreshed with the capture's (past) expiry
	d.mu.Lock()
	d.members[zed.Key()].bindings[0].Expires = time.Time{}
	d.mu.Unlock()
	route("sip:zed@127.0.0.1:5601")
	d.Update(capturedEvent(t, "04-second-contact-CONTACT_INSERT.json"))
	route("") // two contacts: the proxy forks
	d.Update(capturedEvent(t, "05-unregister-contact1-CONTACT_DELETE.json"))
	if n := len(d.members[zed.Key()].bindings); n != 1 {
		t.Fatalf("%d bindings after one of two was deleted", n)
	}
	d.Update(capturedEvent(t, "06-unregister-last-contact-CONTACT_DELETE.json"))
	d.Update(capturedEvent(t, "07-unregister-last-contact-AOR_DELETE.json"))
	route("")
}

func TestWhatIsNotRoutedDirectly(t *testing.T) {
	d := open(t, &Directory{})
	ev := func(contact, received, path string) *opensips.UsrlocEvent {
		return &opensips.UsrlocEvent{Name: opensips.EventULContactInsert, Table: "location", AOR: "zed@127.0.0.1",
			Contact: contact, Received: received, Path: path, Socket: "udp:10.0.0.1:5060"}
	}
	d.Update(ev("sip:zed@10.0.0.9:5062", "sip:203.0.113.7:40112", ""))
	if r, ok := d.Route(zed); !ok || r.NextHop != "sip:203.0.113.7:40112" || r.RURI != "sip:zed@10.0.0.9:5062" {
		t.Fatalf("NATed contact: %+v %v", r, ok)
	}
	for _, bad := range []*opensips.UsrlocEvent{
		ev("sip:zed@10.0.0.9:5062", "", "<sip:edge.example.com;lr>"), // a Path: the proxy routes through it
		ev("tel:+15551234", "", ""),
		ev("sip:zed@10.0.0.9:5062\r\nX: y", "", ""),
		ev(`sip:zed@10.0.0.9:5062","socket":"x`, "", ""),
	} {
		d := open(t, &Directory{})
		d.Update(bad)
		if r, ok := d.Route(zed); ok {
			t.Errorf("%q (path %q) routed to: %+v", bad.Contact, bad.Path, r)
		}
	}
}

// use_domain off: events name the user alone, and imcd's usrloc_domain
// makes the member.
func TestAORWithoutDomain(t *testing.T) {
	d := open(t, &Directory{Domain: "127.0.0.1"})
	d.Update(&opensips.UsrlocEvent{Name: opensips.EventULContactInsert, Table: "location", AOR: "zed", Contact: "sip:zed@10.0.0.9"})
	if r, ok := d.Route(zed); !ok || r.RURI != "sip:zed@10.0.0.9" {
		t.Fatalf("%+v %v", r, ok)
	}
	if got := d.aorOf(zed); got != "zed" {
		t.Fatalf("lookup AOR %q", got)
	}
}

// fakeMI answers ul_show_contact as the real OpenSIPS did.
type fakeMI struct {
	mu    sync.Mutex
	calls []string
	reply func(aor string) ([]byte, error)
}

func (f *fakeMI) Call(_ context.Context, method string, params []byte) ([]byte, error) {
	var p fastjson.Parser
	v, err := p.ParseBytes(params)
	if err != nil || method != "ul_show_contact" || string(v.GetStringBytes("table_name")) != "location" {
		return nil, errors.New("bad call " + method + " " + string(params))
	}
	aor := string(v.GetStringBytes("aor"))
	f.mu.Lock()
	f.calls = append(f.calls, aor)
	f.mu.Unlock()
	return f.reply(aor)
}

func (f *fakeMI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A member nothing is known of is looked up once in the background, with
// ul_show_contact as captured; meanwhile, and after "AOR not found", the
// proxy is used.
func TestLookup(t *testing.T) {
	captured, err := os.ReadFile("../../testdata/opensips-wire/mi/datagram/usrloc_show_contact.response.json")
	if err != nil {
		t.Fatal(err)
	}
	var p fastjson.Parser
	v, err := p.ParseBytes(captured)
	if err != nil {
		t.Fatal(err)
	}
	// The captured contact had expired; this one has an hour left.
	result := []byte(`{"AOR":"zed@127.0.0.1","Contacts":[{"Contact":"sip:zed@127.0.0.1:5603","Expires":3600,"Socket":"udp:127.0.0.1:5060"}]}`)
	if got, _ := parseShowContact(v.Get("result").MarshalTo(nil), time.Now()); len(got) != 0 {
		t.Fatalf("an expired contact was kept: %+v", got)
	}
	mi := &fakeMI{reply: func(aor string) ([]byte, error) {
		if aor == "zed@127.0.0.1" {
			return result, nil
		}
		return nil, &jsonrpc.Error{Code: 404, Message: "AOR not found"}
	}}
	d := open(t, &Directory{Lookup: ShowContact(mi, "location")})
	if _, ok := d.Route(zed); ok {
		t.Fatal("routed before the lookup")
	}
	eventually(t, "the lookup", func() bool { _, ok := d.Route(zed); return ok })
	if r, _ := d.Route(zed); r.RURI != "sip:zed@127.0.0.1:5603" || r.Socket != "udp:127.0.0.1:5060" {
		t.Fatalf("%+v", r)
	}
	nobody := imc.URI{User: "nobody", Host: "127.0.0.1"}
	d.Route(nobody)
	eventually(t, "the second lookup", func() bool { return mi.count() == 2 })
	for range 10 {
		if _, ok := d.Route(nobody); ok {
			t.Fatal("a member not registered was routed to")
		}
	}
	if mi.count() != 2 {
		t.Fatalf("looked up %d times: an unregistered member is not asked again at once", mi.count())
	}
	// A direct MESSAGE that failed: forgotten, looked up again.
	d.Forget(zed)
	if _, ok := d.Route(zed); ok {
		t.Fatal("still routed after Forget")
	}
	eventually(t, "the lookup after Forget", func() bool { return mi.count() == 3 })
}
