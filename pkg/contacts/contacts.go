// Package contacts keeps where each member is registered, as OpenSIPS's
// usrloc reports it, so that imcd can send a member's MESSAGEs straight to
// their contact (delivery_path = contact) instead of to their address of
// record, which loops back into OpenSIPS's script for a lookup: a second
// transaction per delivery in OpenSIPS, and, with several SIP workers, no
// order between two MESSAGEs to the same member (docs/delivery.md).
//
// A Directory learns bindings from usrloc's events (E_UL_CONTACT_INSERT,
// _UPDATE, _DELETE, E_UL_AOR_DELETE) and, for a member it has heard
// nothing of, by asking OpenSIPS (MI ul_show_contact) in the background;
// until it knows, and whenever a member's registration is one it does not
// route itself (several contacts, which the proxy forks to; a Path, which
// the proxy routes through), the member is reached through the proxy.
package contacts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// Binding is one registered contact of a member.
type Binding struct {
	// Contact is the contact URI the member registered.
	Contact string
	// Received is the address the REGISTER came from when it differs from
	// the contact's (a NATed phone: "sip:203.0.113.7:40112"), "" when none.
	Received string
	// Path is the Path header usrloc kept ("" when none).
	Path string
	// Socket is OpenSIPS's socket the REGISTER came in on
	// ("udp:10.0.0.1:5060"), "" when unknown.
	Socket string
	// Expires is when the binding ends; zero for a permanent one.
	Expires time.Time
}

// route is what a member's MESSAGEs go through: their one contact, or
// the proxy (ok false).
func (b *Binding) route(now time.Time) (opensips.Route, bool) {
	if b.Path != "" || (!b.Expires.IsZero() && !now.Before(b.Expires)) {
		return opensips.Route{}, false
	}
	return opensips.Route{RURI: b.Contact, NextHop: b.Received, Socket: b.Socket}, true
}

// Lookup asks OpenSIPS for the bindings of one AOR (as usrloc keys it:
// user@domain, or the user alone without use_domain). No bindings and a nil
// error means the AOR is not registered.
type Lookup func(ctx context.Context, aor string) ([]Binding, error)

// Directory defaults.
const (
	// DefaultTable is usrloc's table in OpenSIPS's default configuration.
	DefaultTable = "location"
	// DefaultLookupRate bounds the ul_show_contact calls a second.
	DefaultLookupRate = 200
	// unknownFor is how long a member found not registered (or whose
	// lookup failed) is not looked up again: events tell of a new
	// registration sooner.
	unknownFor = 30 * time.Second
	// lookupQueue bounds the members waiting to be looked up; beyond it
	// they are looked up when next delivered to.
	lookupQueue = 1024
)

// Directory is the members' bindings. Set the fields, Open, then Close;
// Route and Update are safe for concurrent use and never block.
type Directory struct {
	// Lookup asks OpenSIPS about a member nothing is known of; nil: only
	// the events say.
	Lookup Lookup
	// LookupRate bounds the lookups a second; DefaultLookupRate when 0.
	LookupRate int
	// Domain is added to an AOR without one (usrloc's use_domain off:
	// imcd's usrloc_domain); "" keeps such AORs out.
	Domain string
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger

	log *slog.Logger

	mu      sync.RWMutex
	members map[string]*member // member key (imc.URI.Key) → what is known

	asks   chan string // member keys to look up
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// member is what is known of one member's registration.
type member struct {
	aor      string    // as usrloc keys it, for ul_show_contact
	bindings []Binding // by contact
	// checked is when a lookup last said it is not registered (or
	// failed); asking marks a lookup queued or running.
	checked time.Time
	asking  bool
}

// Open starts the background lookups.
func (d *Directory) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.log = logging.Child(d.Logger, logkey.SystemContacts)
	d.members = make(map[string]*member)
	d.asks = make(chan string, lookupQueue)
	if d.LookupRate <= 0 {
		d.LookupRate = DefaultLookupRate
	}
	run, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if d.Lookup != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.lookups(run) }()
	}
	return nil
}

// Close stops the lookups.
func (d *Directory) Close() error {
	if d.cancel != nil {
		d.cancel()
		d.wg.Wait()
	}
	return nil
}

// Route says how to reach u: through their one usable contact (true), or
// through the proxy (false: not known yet, not registered, several
// contacts, a Path). A member not known of is looked up in the background.
func (d *Directory) Route(u imc.URI) (opensips.Route, bool) {
	var buf [imc.KeyBufLen]byte
	key := u.AppendKey(buf[:0])
	now := time.Now()
	d.mu.RLock()
	m := d.members[string(key)]
	if m != nil && len(m.bindings) == 1 {
		r, ok := m.bindings[0].route(now)
		d.mu.RUnlock()
		return r, ok
	}
	known := m != nil && (len(m.bindings) > 0 || m.asking || now.Sub(m.checked) < unknownFor)
	d.mu.RUnlock()
	if !known && d.Lookup != nil {
		d.ask(u, string(key))
	}
	return opensips.Route{}, false
}

// ask queues a lookup of u, unless one is queued or the queue is full.
func (d *Directory) ask(u imc.URI, key string) {
	d.mu.Lock()
	m := d.members[key]
	if m == nil {
		m = &member{aor: d.aorOf(u)}
		d.members[key] = m
	}
	if m.asking {
		d.mu.Unlock()
		return
	}
	m.asking = true
	d.mu.Unlock()
	select {
	case d.asks <- key:
	default:
		d.mu.Lock()
		m.asking = false
		d.mu.Unlock()
	}
}

// aorOf is u as usrloc keys it: user@domain, or the user alone when the
// directory's Domain says usrloc runs without use_domain.
func (d *Directory) aorOf(u imc.URI) string {
	if d.Domain != "" && strings.EqualFold(u.Host, d.Domain) {
		return u.User
	}
	return u.AOR()
}

// lookups runs the queued lookups, LookupRate a second at most.
func (d *Directory) lookups(ctx context.Context) {
	gap := time.Second / time.Duration(d.LookupRate)
	t := time.NewTicker(gap)
	defer t.Stop()
	for {
		var key string
		select {
		case key = <-d.asks:
		case <-ctx.Done():
			return
		}
		d.lookup(ctx, key)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// lookup asks OpenSIPS for one member's bindings and keeps the answer.
func (d *Directory) lookup(ctx context.Context, key string) {
	d.mu.RLock()
	m := d.members[key]
	aor := ""
	if m != nil {
		aor = m.aor
	}
	d.mu.RUnlock()
	if m == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	bs, err := d.Lookup(cctx, aor)
	cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	m.asking = false
	if err != nil {
		m.checked = time.Now()
		d.log.Debug("usrloc lookup failed: the member is reached through the proxy", logkey.Member, aor, logkey.Err, err)
		return
	}
	kept := m.bindings[:0]
	for _, b := range bs {
		if valid(&b) {
			kept = append(kept, b)
		}
	}
	m.bindings = kept
	if len(kept) == 0 {
		m.checked = time.Now()
	}
}

// Update applies one usrloc event.
func (d *Directory) Update(ev *opensips.UsrlocEvent) {
	uri := ev.URI(d.Domain)
	if uri == "" {
		return
	}
	u, err := imc.ParseURI(uri)
	if err != nil {
		return
	}
	key := u.Key()
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.members[key]
	switch ev.Name {
	case opensips.EventULAORDelete:
		if m != nil {
			m.bindings, m.checked = nil, time.Now()
		}
		return
	case opensips.EventULContactDelete:
		if m != nil {
			m.bindings = without(m.bindings, ev.Contact)
			if len(m.bindings) == 0 {
				m.checked = time.Now()
			}
		}
		return
	case opensips.EventULContactInsert, opensips.EventULContactUpdate:
	default:
		return
	}
	b := Binding{Contact: ev.Contact, Received: ev.Received, Path: ev.Path, Socket: ev.Socket, Expires: ev.Expires}
	if !valid(&b) {
		d.log.Debug("usrloc contact not routed directly: unusable", logkey.Member, uri, logkey.Contact, truncate(ev.Contact))
		return
	}
	if m == nil {
		m = &member{aor: ev.AOR}
		d.members[key] = m
	}
	m.bindings = append(without(m.bindings, b.Contact), b)
}

// Forget drops what is known of u (a direct delivery failed): the next
// MESSAGE goes through the proxy, and the member is looked up again.
func (d *Directory) Forget(u imc.URI) {
	var buf [imc.KeyBufLen]byte
	key := u.AppendKey(buf[:0])
	d.mu.Lock()
	if m := d.members[string(key)]; m != nil && !m.asking {
		delete(d.members, string(key))
	}
	d.mu.Unlock()
}

func without(bs []Binding, contact string) []Binding {
	out := bs[:0]
	for _, b := range bs {
		if b.Contact != contact {
			out = append(out, b)
		}
	}
	clear(bs[len(out):])
	return out
}

// maxField bounds what is passed on to t_uac_dlg from a registration.
const maxField = 255

// valid reports whether a binding can be routed to: a sip/sips contact
// URI, and a received address and socket of printable bytes. A phone
// writes its Contact header itself: what OpenSIPS would refuse in
// t_uac_dlg's ruri must not reach it (the member would lose the MESSAGE
// instead of being reached through the proxy).
func valid(b *Binding) bool {
	c := strings.ToLower(b.Contact)
	if !strings.HasPrefix(c, "sip:") && !strings.HasPrefix(c, "sips:") {
		return false
	}
	for _, s := range []string{b.Contact, b.Received, b.Path, b.Socket} {
		if len(s) > maxField {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\' {
				return false
			}
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Caller makes one synchronous MI call (*opensips.MIClient is one).
type Caller interface {
	Call(ctx context.Context, method string, params []byte) ([]byte, error)
}

// ShowContact is a Lookup through MI ul_show_contact on usrloc's table
// (usrloc_table: "location" in OpenSIPS's default configuration).
func ShowContact(c Caller, table string) Lookup {
	return func(ctx context.Context, aor string) ([]Binding, error) {
		params := jsonrpc.AppendString(append(jsonrpc.AppendString([]byte(`{"table_name":`), table), `,"aor":`...), aor)
		params = append(params, '}')
		res, err := c.Call(ctx, "ul_show_contact", params)
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) && rpcErr.Code == 404 {
			return nil, nil // AOR not found: not registered
		}
		if err != nil {
			return nil, err
		}
		return parseShowContact(res, time.Now())
	}
}

// parseShowContact reads ul_show_contact's result:
// {"AOR":…,"Contacts":[{"Contact":…,"Expires":N|"expired"|"permanent",
// "Received":…,"Path":…,"Socket":…},…]} (Received and Path only when set).
func parseShowContact(res []byte, now time.Time) ([]Binding, error) {
	var p fastjson.Parser
	v, err := p.ParseBytes(res)
	if err != nil {
		return nil, fmt.Errorf("ul_show_contact: %w", err)
	}
	var out []Binding
	for _, c := range v.GetArray("Contacts") {
		b := Binding{Contact: string(c.GetStringBytes("Contact")), Received: string(c.GetStringBytes("Received")),
			Path: string(c.GetStringBytes("Path")), Socket: string(c.GetStringBytes("Socket"))}
		switch e := c.Get("Expires"); {
		case e == nil:
		case e.Type() == fastjson.TypeNumber:
			b.Expires = now.Add(time.Duration(e.GetInt()) * time.Second)
		case string(e.GetStringBytes()) == "expired":
			continue
		}
		out = append(out, b)
	}
	return out, nil
}
