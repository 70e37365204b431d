package opensipstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// The usrloc events, as OpenSIPS's usrloc module publishes them. They are in
// the captured events_list, so event_subscribe accepts them.
const (
	EventAORInsert     = "E_UL_AOR_INSERT"
	EventAORDelete     = "E_UL_AOR_DELETE"
	EventContactInsert = "E_UL_CONTACT_INSERT"
	EventContactUpdate = "E_UL_CONTACT_UPDATE"
	EventContactDelete = "E_UL_CONTACT_DELETE"
)

// UsrlocTable is the one usrloc table (domain) the fake keeps, named as in
// the captures and OpenSIPS's default script.
const UsrlocTable = "location"

// ErrNotRegistered is returned by Unregister and ExpireContact when the AOR
// has no such contact: nothing changed and no event was raised.
var ErrNotRegistered = errors.New("opensipstest: contact not registered")

// The fixed parts of a contact, as the captured REGISTERs left them: no
// Received, Path or q, the UA sent no User-Agent, the REGISTER came in on
// OpenSIPS's UDP listener.
const (
	ulUserAgent = "n/a"
	ulSocket    = "udp:127.0.0.1:5060"
	ulMethods   = 4294967295
	ulHashSize  = 512
)

// ulContact is one registered contact.
type ulContact struct {
	uri     string
	expires time.Time // absolute; the events carry its Unix seconds
	callID  string
	cseq    int
	id      uint64 // ContactID
}

// aorRecord is one AOR with its contacts, in registration order.
type aorRecord struct {
	key      string // aorKey
	aor      string // user@host as registered, no scheme
	contacts []*ulContact
}

// location is usrloc's table. op serializes each change with the events it
// raises, so that subscribers see the events of one AOR in order; mu guards
// the data, which t_uac_dlg reads without waiting for event delivery.
type location struct {
	op sync.Mutex

	mu      sync.Mutex
	records map[string]*aorRecord // by aorKey
	order   []*aorRecord          // ul_dump order: insertion
}

// ulEvent is one event to raise: its name and the members of its params.
type ulEvent struct {
	name   string
	params []byte
}

func (l *location) init() { l.records = make(map[string]*aorRecord) }

// clear forgets every registration (a restart of a memory-only usrloc).
func (l *location) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records, l.order = make(map[string]*aorRecord), nil
}

// aorKey is how the fake matches AORs: the user part exactly (registrar's
// case_sensitive default), the host case-insensitively.
func aorKey(user, host string) string { return user + "@" + strings.ToLower(host) }

// parseAOR accepts "user@host" or a SIP URI and returns its user and host.
func parseAOR(aor string) (user, host string, ok bool) {
	low := strings.ToLower(aor)
	if !strings.HasPrefix(low, "sip:") && !strings.HasPrefix(low, "sips:") {
		aor = "sip:" + aor
	}
	u, ok := parseSIPURI(aor)
	if !ok || u.user == "" {
		return "", "", false
	}
	return u.user, u.host, true
}

// registered reports whether user@host has a contact that has not expired
// at now, as lookup("location") needs.
func (l *location) registered(user, host string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.records[aorKey(user, host)]
	if r == nil {
		return false
	}
	for _, c := range r.contacts {
		if now.Before(c.expires) {
			return true
		}
	}
	return false
}

// Register registers contact for aor ("user@host" or a SIP URI) for
// expires, as a REGISTER from a UA would, and raises to every subscriber of
// each event exactly what the captures show: E_UL_AOR_INSERT then
// E_UL_CONTACT_INSERT for the AOR's first contact, E_UL_CONTACT_INSERT for
// another contact, E_UL_CONTACT_UPDATE when contact is already registered
// (a refresh). Each call is a new REGISTER with its own Call-ID and CSeq 1,
// as in the captures. expires <= 0 unregisters (see Unregister). The error
// joins the failures to raise the events; the table is updated anyway.
func (s *Server) Register(aor, contact string, expires time.Duration) error {
	if expires <= 0 {
		return s.Unregister(aor, contact)
	}
	user, host, ok := parseAOR(aor)
	if !ok {
		return fmt.Errorf("opensipstest: bad AOR %q", aor)
	}
	if _, ok := parseSIPURI(contact); !ok {
		return fmt.Errorf("opensipstest: bad contact %q", contact)
	}
	s.ul.op.Lock()
	defer s.ul.op.Unlock()
	c := &ulContact{
		uri:     contact,
		expires: time.Now().Add(expires),
		callID:  fmt.Sprintf("%016x@lab", rand.Uint64()),
		cseq:    1,
		id:      rand.Uint64() >> 2,
	}
	return s.raiseUsrloc(s.ul.register(user, host, c))
}

func (l *location) register(user, host string, c *ulContact) []ulEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var events []ulEvent
	key := aorKey(user, host)
	r := l.records[key]
	if r == nil {
		r = &aorRecord{key: key, aor: user + "@" + host}
		l.records[key] = r
		l.order = append(l.order, r)
		events = append(events, ulEvent{EventAORInsert, appendAORParams(nil, r.aor)})
	}
	if i := slices.IndexFunc(r.contacts, func(o *ulContact) bool { return o.uri == c.uri }); i >= 0 {
		old := r.contacts[i]
		old.expires, old.callID, old.cseq = c.expires, c.callID, c.cseq
		return append(events, ulEvent{EventContactUpdate, appendContactParams(nil, r.aor, old)})
	}
	r.contacts = append(r.contacts, c)
	return append(events, ulEvent{EventContactInsert, appendContactParams(nil, r.aor, c)})
}

// Unregister removes contact from aor ("" removes every contact), as a
// REGISTER with expires 0 does, and raises E_UL_CONTACT_DELETE for each
// contact removed (with its params as stored), then E_UL_AOR_DELETE when
// the AOR has no contact left. It returns ErrNotRegistered when there was
// no such contact.
func (s *Server) Unregister(aor, contact string) error {
	return s.removeContact(aor, contact)
}

// ExpireContact removes contact from aor ("" removes every contact) as
// usrloc's timer does once the contact expired, with the same events as
// Unregister (captured: the timer's events are those of an unregister).
// Contacts also expire by themselves when Options.UsrlocTimer is set.
func (s *Server) ExpireContact(aor, contact string) error {
	return s.removeContact(aor, contact)
}

func (s *Server) removeContact(aor, contact string) error {
	user, host, ok := parseAOR(aor)
	if !ok {
		return fmt.Errorf("opensipstest: bad AOR %q", aor)
	}
	s.ul.op.Lock()
	defer s.ul.op.Unlock()
	events := s.ul.remove(aorKey(user, host), func(c *ulContact) bool { return contact == "" || c.uri == contact })
	if len(events) == 0 {
		return fmt.Errorf("%w: %s %s", ErrNotRegistered, aor, contact)
	}
	return s.raiseUsrloc(events)
}

// remove deletes the contacts of the AOR at key that match, and the AOR
// when none is left, and returns the events that says.
func (l *location) remove(key string, match func(*ulContact) bool) []ulEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.records[key]
	if r == nil {
		return nil
	}
	var events []ulEvent
	r.contacts = slices.DeleteFunc(r.contacts, func(c *ulContact) bool {
		if !match(c) {
			return false
		}
		events = append(events, ulEvent{EventContactDelete, appendContactParams(nil, r.aor, c)})
		return true
	})
	if len(events) > 0 && len(r.contacts) == 0 {
		delete(l.records, key)
		l.order = slices.DeleteFunc(l.order, func(o *aorRecord) bool { return o == r })
		events = append(events, ulEvent{EventAORDelete, appendAORParams(nil, r.aor)})
	}
	return events
}

// Registered reports whether aor has a contact that has not expired.
func (s *Server) Registered(aor string) bool {
	user, host, ok := parseAOR(aor)
	return ok && s.ul.registered(user, host, time.Now())
}

// runUsrlocTimer removes expired contacts every interval, as usrloc's timer.
func (s *Server) runUsrlocTimer(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			s.ul.op.Lock()
			var events []ulEvent
			for _, key := range s.ul.keys() {
				events = append(events, s.ul.remove(key, func(c *ulContact) bool { return now.After(c.expires) })...)
			}
			if err := s.raiseUsrloc(events); err != nil {
				s.log.Debug("usrloc timer events not delivered", logkey.Err, err)
			}
			s.ul.op.Unlock()
		}
	}
}

func (l *location) keys() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.order))
	for _, r := range l.order {
		keys = append(keys, r.key)
	}
	return keys
}

// raiseUsrloc raises events in order to the subscribers of each.
func (s *Server) raiseUsrloc(events []ulEvent) error {
	var errs []error
	for _, ev := range events {
		params := ev.params
		if _, err := s.raise(ev.name, func(dst []byte) []byte { return append(dst, params...) }); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ev.name, err))
		}
	}
	return errors.Join(errs...)
}

// appendAORParams appends the params of E_UL_AOR_INSERT / E_UL_AOR_DELETE:
// {"domain":"location","aor":"zed@127.0.0.1"}.
func appendAORParams(dst []byte, aor string) []byte {
	dst = append(dst, `"domain":"`+UsrlocTable+`","aor":`...)
	return appendCString(dst, aor)
}

// appendContactParams appends the params of the E_UL_CONTACT_* events, in
// usrloc's order and with its types: received and path null when absent,
// qval -1 for no q, expires an absolute Unix time, cseq a number.
func appendContactParams(dst []byte, aor string, c *ulContact) []byte {
	dst = appendAORParams(dst, aor)
	dst = append(dst, `,"uri":`...)
	dst = appendCString(dst, c.uri)
	dst = append(dst, `,"received":null,"path":null,"qval":-1,"user_agent":"`+ulUserAgent+`","socket":"`+ulSocket+`","bflags":0,"expires":`...)
	dst = strconv.AppendInt(dst, c.expires.Unix(), 10)
	dst = append(dst, `,"callid":`...)
	dst = appendCString(dst, c.callID)
	dst = append(dst, `,"cseq":`...)
	dst = strconv.AppendInt(dst, int64(c.cseq), 10)
	return append(dst, `,"attr":"","latency":0,"shtag":""`...)
}
