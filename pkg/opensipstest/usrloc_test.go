package opensipstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// blank replaces every match of each pattern by its name, so that captured
// and produced bytes can be compared but for their variable fields.
func blank(b []byte, patterns map[string]*regexp.Regexp) string {
	for name, re := range patterns {
		b = re.ReplaceAll(b, []byte(name))
	}
	return string(b)
}

var (
	eventVars = map[string]*regexp.Regexp{
		`"expires":E`: regexp.MustCompile(`"expires":\d+`),
		`"callid":C`:  regexp.MustCompile(`"callid":"[^"]*"`),
	}
	contactVars = map[string]*regexp.Regexp{
		`"ContactID":I`: regexp.MustCompile(`"ContactID":"\d+"`),
		`"Callid":C`:    regexp.MustCompile(`"Callid":"[^"]*"`),
		`"Expires":E`:   regexp.MustCompile(`"Expires":\d+`),
	}
	replyVars = map[string]*regexp.Regexp{
		"branch=B":   regexp.MustCompile(`branch=z9hG4bK[0-9a-f]{4}\.[0-9a-f]{8}\.0`),
		";tag=T":     regexp.MustCompile(`;tag=[0-9a-f]{4}-[0-9a-f]{32}`),
		"Call-ID: C": regexp.MustCompile(`Call-ID: 2dba7ab300f3[0-9a-f]+-\d+@127\.0\.0\.1`),
	}
)

// subscribeUDP subscribes a fresh UDP socket to events over MI, as the
// captures were taken, and returns it.
func subscribeUDP(t *testing.T, s *Server, c *client, events ...string) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	for _, ev := range events {
		r := c.roundTrip([]byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":{"event":"` + ev + `","socket":"udp:` + pc.LocalAddr().String() + `","expire":600},"id":1}`))
		if string(r) != `{"jsonrpc":"2.0","result":"OK","id":1}` {
			t.Fatalf("event_subscribe %s: %s", ev, r)
		}
	}
	return pc
}

func readDatagram(t *testing.T, pc net.PacketConn) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// TestUsrlocEventsAsCaptured replays the REGISTER sequence of
// events/usrloc and compares every event with its capture byte for byte,
// but for expires and callid, which are then checked for what they mean.
func TestUsrlocEventsAsCaptured(t *testing.T) {
	s := start(t, Options{})
	c := newClient(t, s)
	pc := subscribeUDP(t, s, c, EventAORInsert, EventAORDelete, EventContactInsert, EventContactUpdate, EventContactDelete)
	files, _ := filepath.Glob(filepath.Join(wire, "events/usrloc/*.json"))
	if len(files) != 11 {
		t.Fatalf("%d captures", len(files))
	}
	var p fastjson.Parser
	got := map[string][]byte{} // capture number -> event
	next := 0
	f := func(op func() error, want ...string) {
		t.Helper()
		before := time.Now().Unix()
		if err := op(); err != nil {
			t.Fatal(err)
		}
		for _, num := range want {
			file := files[next]
			next++
			if !strings.HasPrefix(filepath.Base(file), num+"-") {
				t.Fatalf("capture %s is not %s", file, num)
			}
			g := readDatagram(t, pc)
			w := readWire(t, "events/usrloc/"+filepath.Base(file))
			if blank(g, eventVars) != blank(w, eventVars) {
				t.Fatalf("%s:\n got %s\nwant %s", filepath.Base(file), g, w)
			}
			if v, _ := p.ParseBytes(g); v.Exists("params", "expires") && v.GetInt64("params", "expires") < before {
				t.Fatalf("%s: expires %d is not an absolute time", num, v.GetInt64("params", "expires"))
			}
			got[num] = g
		}
	}
	const aor = "zed@127.0.0.1"
	f(func() error { return s.Register(aor, "sip:zed@127.0.0.1:5601", 60*time.Second) }, "01", "02")
	f(func() error { return s.Register("sip:"+aor, "sip:zed@127.0.0.1:5601", 60*time.Second) }, "03")
	f(func() error { return s.Register(aor, "sip:zed@127.0.0.1:5602", 60*time.Second) }, "04")
	f(func() error { return s.Unregister(aor, "sip:zed@127.0.0.1:5601") }, "05")
	f(func() error { return s.Register(aor, "sip:zed@127.0.0.1:5602", 0) }, "06", "07") // expires 0 unregisters
	f(func() error { return s.Register(aor, "sip:zed@127.0.0.1:5603", 10*time.Second) }, "08", "09")
	if !s.Registered(aor) {
		t.Fatal("not registered")
	}
	f(func() error { return s.ExpireContact(aor, "sip:zed@127.0.0.1:5603") }, "10", "11")
	if s.Registered(aor) {
		t.Fatal("still registered")
	}

	field := func(num, k string) string {
		v, err := p.ParseBytes(got[num])
		if err != nil {
			t.Fatal(err)
		}
		return v.Get("params", k).String()
	}
	// A refresh is a new REGISTER (new callid); a delete shows the contact
	// as stored (callid and expires of its last REGISTER), as captured.
	if field("03", "callid") == field("02", "callid") || field("05", "callid") != field("03", "callid") ||
		field("05", "expires") != field("03", "expires") || field("06", "callid") != field("04", "callid") ||
		field("10", "callid") != field("09", "callid") {
		t.Fatalf("callids/expires: %s %s %s %s %s", got["02"], got["03"], got["05"], got["04"], got["06"])
	}
	if e, _ := strconv.ParseInt(field("09", "expires"), 10, 64); e > time.Now().Unix()+10 || e < time.Now().Unix() {
		t.Fatalf("expires %d for 10 s at %d", e, time.Now().Unix())
	}

	if err := s.Unregister(aor, "sip:zed@127.0.0.1:5603"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("unregistering an unknown contact: %v", err)
	}
	if err := s.Register("127.0.0.1", "sip:x@127.0.0.1", time.Second); err == nil {
		t.Fatal("AOR without user accepted")
	}
	pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := pc.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("unexpected event (%d bytes)", n)
	}
}

// TestUsrlocTimerAndStream: the timer removes an expired contact with the
// unregister events, and a reliable event_stream subscriber gets them as
// requests carrying the event name.
func TestUsrlocTimerAndStream(t *testing.T) {
	s := start(t, Options{UsrlocTimer: 20 * time.Millisecond, Reliable: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock := "tcp:" + ln.Addr().String()
	s.subscribe(EventContactDelete, sock, 600)
	s.subscribe(EventAORDelete, sock, 600)
	got := make(chan []byte, 2)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		dec := json.NewDecoder(conn)
		for {
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				return
			}
			var req struct{ ID int64 }
			json.Unmarshal(raw, &req)
			conn.Write([]byte(`{"jsonrpc":"2.0","result":"ok","id":` + strconv.FormatInt(req.ID, 10) + `}`))
			got <- raw
		}
	}()
	if err := s.Register("zed@127.0.0.1", "sip:zed@127.0.0.1:5603", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10-expired-by-timer-CONTACT_DELETE", "11-expired-by-timer-AOR_DELETE"} {
		var g []byte
		select {
		case g = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s", want)
		}
		w := readWire(t, "events/usrloc/"+want+".json")
		var p fastjson.Parser
		v, err := p.ParseBytes(w)
		if err != nil {
			t.Fatal(err)
		}
		name := string(v.GetStringBytes("method"))
		// Reliable mode: the id first and the event name as first param.
		w = bytes.Replace(w, []byte(`{"jsonrpc"`), []byte(`{"id":N,"jsonrpc"`), 1)
		w = bytes.Replace(w, []byte(`"params":{`), []byte(`"params":{"opensips_event":"`+name+`",`), 1)
		g = regexp.MustCompile(`^\{"id":\d+,`).ReplaceAll(g, []byte(`{"id":N,`))
		if blank(g, eventVars) != blank(w, eventVars) {
			t.Fatalf("%s:\n got %s\nwant %s", want, g, w)
		}
	}
	ctx := waitCtx(t)
	for ch := s.rec.changed(); len(s.Replies()) < 2; ch = s.rec.changed() {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%d replies recorded", len(s.Replies()))
		}
	}
	if s.Registered("zed@127.0.0.1") || len(s.Replies()) != 2 {
		t.Fatalf("registered %v, %d replies", s.Registered("zed@127.0.0.1"), len(s.Replies()))
	}
}

// TestUsrlocMI answers ul_show_contact and ul_dump from the table, shaped
// as captured.
func TestUsrlocMI(t *testing.T) {
	s := start(t, Options{})
	c := newClient(t, s)
	f := func(name string, vars map[string]*regexp.Regexp) {
		t.Helper()
		got := c.roundTrip(readWire(t, "mi/datagram/"+name+".request.json"))
		if want := readWire(t, "mi/datagram/"+name+".response.json"); blank(got, vars) != blank(want, vars) {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	f("usrloc_show_contact_none", nil)

	// The captured table, registered in the captured order; zed had expired.
	var p fastjson.Parser
	dump, err := p.ParseBytes(readWire(t, "mi/datagram/usrloc_dump.response.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range dump.GetArray("result", "Domains", "0", "AORs") {
		aor := string(a.GetStringBytes("AOR"))
		expires := time.Hour
		if aor == "zed@127.0.0.1" {
			expires = time.Millisecond
		}
		if err := s.Register(aor, string(a.GetStringBytes("Contacts", "0", "Contact")), expires); err != nil {
			t.Fatal(err)
		}
	}
	for s.Registered("zed@127.0.0.1") {
		time.Sleep(time.Millisecond)
	}
	f("usrloc_show_contact", contactVars)
	f("usrloc_dump", contactVars)
	f("usrloc_dump_brief", nil)

	g := func(req, want string) {
		t.Helper()
		if got := string(c.roundTrip([]byte(req))); got != want {
			t.Fatalf("%s:\n got %s\nwant %s", req, got, want)
		}
	}
	g(`{"jsonrpc":"2.0","method":"ul_show_contact","params":{"table_name":"nope","aor":"zed@127.0.0.1"},"id":1}`,
		`{"jsonrpc":"2.0","error":{"code":404,"message":"Table not found"},"id":1}`)
	g(`{"jsonrpc":"2.0","method":"usrloc:show_contact","params":["location","zed"],"id":2}`,
		`{"jsonrpc":"2.0","error":{"code":400,"message":"Domain missing in AOR"},"id":2}`)
	g(`{"jsonrpc":"2.0","method":"ul_show_contact","params":{"aor":"zed@127.0.0.1"},"id":3}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":3}`)
	g(`{"jsonrpc":"2.0","method":"ul_show_contact","params":{"table":"location","aor":"zed@127.0.0.1"},"id":4}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Named parameters do not match"},"id":4}`)
	g(`{"jsonrpc":"2.0","method":"ul_show_contact","params":{"table_name":"location","aor":["x"]},"id":5}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Bad type for parameter 'aor'"},"id":5}`)
	g(`{"jsonrpc":"2.0","method":"ul_dump","params":{"brief":"yes"},"id":6}`,
		`{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Bad type for parameter 'brief'"},"id":6}`)
	g(`{"jsonrpc":"2.0","method":"which","params":{"command":"ul_dump"},"id":7}`, `{"jsonrpc":"2.0","result":[[],["brief"]],"id":7}`)

	// A restart loses the memory-only table.
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	c = newClient(t, s)
	g(`{"jsonrpc":"2.0","method":"usrloc:dump","params":{"brief":0},"id":8}`,
		`{"jsonrpc":"2.0","result":{"Domains":[{"name":"location","hash_size":512,"AORs":[]}]},"id":8}`)
}

// TestRequireRegistration routes t_uac_dlg through the location table and
// checks how per-URI rules compose with registrations.
func TestRequireRegistration(t *testing.T) {
	s := start(t, Options{RequireRegistration: true, FrTimeout: 100 * time.Millisecond})
	c := newClient(t, s)
	req := readWire(t, "t_uac_dlg/via_proxy_unregistered_404.request.json") // to sip:zed@127.0.0.1, id 131
	status := func(id string) string {
		t.Helper()
		r := c.roundTrip(withID(t, req, "131", id))
		var p fastjson.Parser
		v, err := p.ParseBytes(r)
		if err != nil || v.Get("result") == nil {
			t.Fatalf("reply %s: %v", r, err)
		}
		return string(v.GetStringBytes("result", "Status"))
	}

	got := c.roundTrip(req)
	if want := readWire(t, "t_uac_dlg/via_proxy_unregistered_404.response.json"); blank(got, replyVars) != blank(want, replyVars) {
		t.Fatalf("unregistered:\n got %s\nwant %s", got, want)
	}
	if d := s.Deliveries()[0]; !d.Unregistered || d.Status != "404 Not Found" {
		t.Fatalf("delivery %+v", d)
	}

	const aor = "zed@127.0.0.1"
	f := func(id, want string) {
		t.Helper()
		if got := status(id); got != want {
			t.Fatalf("request %s: %q, want %q", id, got, want)
		}
	}
	s.SetStatus("sip:zed@127.0.0.1", "480 Temporarily Unavailable") // waits for a registration
	f("1", "404 Not Found")
	s.Register(aor, "sip:zed@127.0.0.1:5601", time.Hour)
	f("2", "480 Temporarily Unavailable")
	s.ClearRules()
	f("3", "200 OK")
	s.SetNoAnswer("sip:zed@127.0.0.1") // set while registered: at once
	f("4", "408 Request Timeout")
	s.Unregister(aor, "")
	f("5", "404 Not Found") // not a 408: the far end is never tried
	s.Register(aor, "sip:zed@127.0.0.1:5602", time.Hour)
	f("6", "408 Request Timeout") // the rule outlived the registration
	s.SetError("sip:zed@127.0.0.1", 476, "Unresolvable destination (476/MI/UAC)")
	s.Unregister(aor, "")
	if r := string(c.roundTrip(withID(t, req, "131", "7"))); r != `{"jsonrpc":"2.0","error":{"code":476,"message":"Unresolvable destination (476/MI/UAC)"},"id":7}` {
		t.Fatalf("SetError while unregistered: %s", r)
	}
	s.ClearRules()
	s.Register(aor, "sip:zed@127.0.0.1:5603", time.Millisecond)
	for s.Registered(aor) {
		time.Sleep(time.Millisecond)
	}
	f("8", "404 Not Found") // expired, not yet removed: lookup skips it
	if st := s.MIStats(); st.PeakOutstanding < 1 {
		t.Fatalf("%+v", st)
	}
}

// TestScriptLoopsRoomsBack: a t_uac_dlg to a room goes through the
// fragment's route as a MESSAGE from a UA would (202, one event), and is
// no Delivery; NoScript delivers it like any other.
func TestScriptLoopsRoomsBack(t *testing.T) {
	req := `{"jsonrpc":"2.0","method":"t_uac_dlg","params":{"method":"MESSAGE","ruri":"sip:chat-manager@127.0.0.1",` +
		`"headers":"From: <sip:imcd-canary@127.0.0.1>;tag=c1\r\nTo: <sip:chat-manager@127.0.0.1>\r\nCall-ID: probe-1@imcd\r\nContent-Type: text/plain\r\n","body":"imcd-canary x 1"},"id":7}`
	s := start(t, Options{})
	c := newClient(t, s)
	pc := subscribeUDP(t, s, c, "E_IMC_MESSAGE")
	if r := string(c.roundTrip([]byte(req))); r != `{"jsonrpc":"2.0","result":{"Status":"202 Accepted"},"id":7}` {
		t.Fatalf("reply %s", r)
	}
	ev := string(readDatagram(t, pc))
	for _, want := range []string{`"from":"sip:imcd-canary@127.0.0.1"`, `"from_tag":"c1"`, `"ruri":"sip:chat-manager@127.0.0.1"`, `"callid":"probe-1@imcd"`, `"body":"imcd-canary x 1"`} {
		if !strings.Contains(ev, want) {
			t.Errorf("event %s lacks %s", ev, want)
		}
	}
	if len(s.Deliveries()) != 0 || len(s.Looped()) != 1 {
		t.Errorf("%d deliveries, %d looped", len(s.Deliveries()), len(s.Looped()))
	}

	s2 := start(t, Options{NoScript: true})
	c2 := newClient(t, s2)
	if r := string(c2.roundTrip([]byte(req))); !strings.Contains(r, `"Status":"200 OK"`) {
		t.Fatalf("NoScript: %s", r)
	}
	if len(s2.Deliveries()) != 1 {
		t.Errorf("NoScript: %d deliveries", len(s2.Deliveries()))
	}
}
