package opensips

import (
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// The events OpenSIPS's usrloc module raises when a registration changes
// (captured in testdata/opensips-wire/events/usrloc). They come through the
// same event_stream or event_datagram link as E_IMC_MESSAGE, once each is
// subscribed with event_subscribe.
const (
	// EventULAORInsert: the AOR got its first contact; E_UL_CONTACT_INSERT follows.
	EventULAORInsert = "E_UL_AOR_INSERT"
	// EventULAORDelete: the AOR lost its last contact (unregistered or
	// expired); E_UL_CONTACT_DELETE came first.
	EventULAORDelete = "E_UL_AOR_DELETE"
	// EventULContactInsert: a new contact was registered for the AOR.
	EventULContactInsert = "E_UL_CONTACT_INSERT"
	// EventULContactUpdate: a registered contact was registered again (refreshed).
	EventULContactUpdate = "E_UL_CONTACT_UPDATE"
	// EventULContactDelete: a contact was unregistered or expired (usrloc's
	// timer gives the same events as an unregister).
	EventULContactDelete = "E_UL_CONTACT_DELETE"
	// EventULContactRefresh: usrloc asks for a contact to be refreshed
	// (push notifications). Not captured: it did not fire on a plain
	// re-REGISTER.
	EventULContactRefresh = "E_UL_CONTACT_REFRESH"
)

// UsrlocEventNames returns the usrloc events that say whether an AOR can be
// reached, in the order to subscribe them.
func UsrlocEventNames() []string {
	return []string{EventULAORInsert, EventULContactInsert, EventULContactUpdate, EventULContactDelete, EventULAORDelete}
}

// IsUsrlocEvent reports whether name is one of the usrloc events
// DecodeUsrlocEvent knows.
func IsUsrlocEvent(name string) bool { return usrlocName([]byte(name)) != "" }

// usrlocName returns the EventUL* constant spelled b, "" for none (without
// allocating).
func usrlocName(b []byte) string {
	switch string(b) {
	case EventULAORInsert:
		return EventULAORInsert
	case EventULAORDelete:
		return EventULAORDelete
	case EventULContactInsert:
		return EventULContactInsert
	case EventULContactUpdate:
		return EventULContactUpdate
	case EventULContactDelete:
		return EventULContactDelete
	case EventULContactRefresh:
		return EventULContactRefresh
	}
	return ""
}

// ReachabilityEventNames returns the usrloc events that say an AOR has a
// live contact (those Registers is true for), in the order to subscribe
// them.
func ReachabilityEventNames() []string {
	return []string{EventULAORInsert, EventULContactInsert, EventULContactUpdate}
}

// UsrlocEvent is one decoded usrloc event. Its strings are copies: they do
// not point into a parser.
type UsrlocEvent struct {
	// Name is the event (one of the EventUL* constants).
	Name string
	// Table is the usrloc table the AOR lives in (the "domain" param,
	// "location"): not a SIP domain.
	Table string
	// AOR is user@domain, without scheme, as usrloc keys it; the user
	// alone when usrloc's use_domain is off (HasDomain is false).
	AOR string
	// Contact is the contact URI ("uri"), "" for the AOR events.
	Contact string
	// Expires is when the contact expires; zero for the AOR events and for
	// a permanent contact (expires 0).
	Expires time.Time
	// CallID and CSeq are those of the REGISTER that last set the contact.
	CallID string
	CSeq   int64
	// Q is the contact's q value times 1000, -1 when it has none (qval).
	Q int
	// Received, Path, UserAgent and Socket are as usrloc keeps them, ""
	// when absent (null).
	Received, Path, UserAgent, Socket string
}

// URI returns the AOR as a SIP URI, "sip:user@domain", the form imcd keeps
// members in. Without a domain in the AOR (use_domain off), domain is
// added; the result is "" when there is none to add.
func (e *UsrlocEvent) URI(domain string) string {
	if e.HasDomain() {
		return "sip:" + e.AOR
	}
	if domain == "" {
		return ""
	}
	return "sip:" + e.AOR + "@" + domain
}

// HasDomain reports whether the AOR is user@domain (usrloc's use_domain
// on).
func (e *UsrlocEvent) HasDomain() bool { return strings.IndexByte(e.AOR, '@') > 0 }

// Registers reports whether the event says the AOR has a live contact now:
// E_UL_AOR_INSERT, E_UL_CONTACT_INSERT or E_UL_CONTACT_UPDATE.
func (e *UsrlocEvent) Registers() bool {
	switch e.Name {
	case EventULAORInsert, EventULContactInsert, EventULContactUpdate:
		return true
	}
	return false
}

// Unregisters reports whether the event says the AOR has no contact left:
// E_UL_AOR_DELETE. (An E_UL_CONTACT_DELETE may leave other contacts.)
func (e *UsrlocEvent) Unregisters() bool { return e.Name == EventULAORDelete }

// DecodeUsrlocEvent decodes the params of one usrloc event named name into
// ev. domain and aor are required; aor is user@domain (usrloc with
// use_domain, as captured) or, with use_domain off, the user alone (see
// UsrlocEvent.URI); the contact events also need uri. A param of the wrong
// JSON type or given twice is an error naming it, wrapping ErrBadEvent; an
// unknown event name is ErrWrongEvent. Unknown params are ignored.
func DecodeUsrlocEvent(name string, params *fastjson.Value, ev *UsrlocEvent) error {
	if !IsUsrlocEvent(name) {
		return fmt.Errorf("%w: %q is not a usrloc event", ErrWrongEvent, name)
	}
	if params == nil {
		return &ParamError{Param: "params", Reason: "missing"}
	}
	o, err := params.Object()
	if err != nil {
		return &ParamError{Param: "params", Reason: "not an object"}
	}
	*ev = UsrlocEvent{Name: name}
	var q, expires int64 = -1, 0
	var seen [nUsrlocParams]bool
	o.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		i, str, num := usrlocParam(ev, key, &q, &expires)
		if i < 0 {
			return // bflags, attr, latency, shtag, reason, req_callid...
		}
		if seen[i] {
			err = &ParamError{Param: string(key), Reason: "given twice"}
			return
		}
		seen[i] = true
		switch t := v.Type(); {
		case num != nil && t == fastjson.TypeNumber:
			n, nerr := v.Int64()
			if nerr != nil {
				err = &ParamError{Param: string(key), Reason: "not an integer"}
			}
			*num = n
		case num != nil:
			err = &ParamError{Param: string(key), Reason: "not a number (" + t.String() + ")"}
		case t == fastjson.TypeString:
			b, _ := v.StringBytes()
			*str = string(b)
		case t != fastjson.TypeNull:
			err = &ParamError{Param: string(key), Reason: "not a string (" + t.String() + ")"}
		}
	})
	ev.Q = int(q)
	if expires != 0 {
		ev.Expires = time.Unix(expires, 0)
	}
	if err != nil {
		return err
	}
	switch {
	case ev.Table == "":
		return &ParamError{Param: "domain", Reason: "missing or empty"}
	case ev.AOR == "":
		return &ParamError{Param: "aor", Reason: "missing or empty"}
	case strings.HasPrefix(ev.AOR, "@") || strings.HasSuffix(ev.AOR, "@"):
		return &ParamError{Param: "aor", Reason: "not user@domain nor a user"}
	case ev.Contact == "" && name != EventULAORInsert && name != EventULAORDelete:
		return &ParamError{Param: "uri", Reason: "missing or empty"}
	}
	return nil
}

// nUsrlocParams counts the params usrlocParam knows.
const nUsrlocParams = 11

// usrlocParam says where the param named key goes: its index (-1 when
// unknown) and the string or the number it fills. The params are those of
// OpenSIPS's modules/usrloc/ul_evi.c.
func usrlocParam(ev *UsrlocEvent, key []byte, q, expires *int64) (int, *string, *int64) {
	switch string(key) {
	case "domain":
		return 0, &ev.Table, nil
	case "aor":
		return 1, &ev.AOR, nil
	case "uri":
		return 2, &ev.Contact, nil
	case "received":
		return 3, &ev.Received, nil
	case "path":
		return 4, &ev.Path, nil
	case "user_agent":
		return 5, &ev.UserAgent, nil
	case "socket":
		return 6, &ev.Socket, nil
	case "callid":
		return 7, &ev.CallID, nil
	case "qval":
		return 8, nil, q
	case "cseq":
		return 9, nil, &ev.CSeq
	case "expires":
		return 10, nil, expires
	}
	return -1, nil, nil
}
