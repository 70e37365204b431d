package opensipstest

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// defaultExpire is event_subscribe's expire when none is given.
const defaultExpire = 3600

// Subscription is one event subscriber, as subscribers_list shows it.
type Subscription struct {
	Event, Socket string
	Expire        int       // seconds, as asked
	Renewed       time.Time // last subscribe
}

func (sub *Subscription) expired(now time.Time) bool {
	return !now.Before(sub.Renewed.Add(time.Duration(sub.Expire) * time.Second))
}

func (sub *Subscription) ttl(now time.Time) int {
	return int(sub.Renewed.Add(time.Duration(sub.Expire)*time.Second).Sub(now) / time.Second)
}

var (
	errBadParamValue = miError(400, "Bad parameter value")
	errParamCount    = jsonrpc.InvalidParams("Too few or too many parameters")
	errParamNames    = jsonrpc.InvalidParams("Named parameters do not match")
	errNotPublished  = miError(404, "Event not published")
)

// eventSubscribe serves event_subscribe / evi:subscribe.
func (s *Server) eventSubscribe(r *request) {
	var event, socket, expire *fastjson.Value
	switch {
	case r.params == nil:
		s.replyError(r, errParamCount)
		return
	case r.params.Type() == fastjson.TypeArray:
		a, _ := r.params.Array()
		if len(a) < 2 || len(a) > 3 {
			s.replyError(r, errParamCount)
			return
		}
		event, socket = a[0], a[1]
		if len(a) == 3 {
			expire = a[2]
		}
	default:
		o, _ := r.params.Object()
		names := true
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch string(k) {
			case "event":
				event = v
			case "socket":
				socket = v
			case "expire":
				expire = v
			default:
				names = false
			}
		})
		if event == nil || socket == nil {
			s.replyError(r, errParamCount)
			return
		}
		if !names {
			s.replyError(r, errParamNames)
			return
		}
	}
	ev, err1 := event.StringBytes()
	sock, err2 := socket.StringBytes()
	if err1 != nil || err2 != nil {
		s.replyError(r, errBadParamValue)
		return
	}
	exp := defaultExpire
	if expire != nil {
		var (
			n   int
			err error
		)
		if b, serr := expire.StringBytes(); serr == nil {
			n, err = strconv.Atoi(string(b))
		} else {
			n, err = expire.Int()
		}
		if err != nil {
			s.replyError(r, errBadParamValue)
			return
		}
		if n < 0 {
			s.replyError(r, jsonrpc.InvalidParams("Negative expire value"))
			return
		}
		exp = n
	}
	if s.eventID(string(ev)) < 0 || !validSocket(string(sock)) {
		s.replyError(r, errBadParamValue)
		return
	}
	s.subscribe(string(ev), string(sock), exp)
	s.replyResult(r, []byte(`"OK"`))
}

// subscribe adds, refreshes or (expire 0) removes a subscription. The real
// OpenSIPS lists an expire-0 subscriber as "expired" for about a second
// before purging it; the fake purges it at once.
func (s *Server) subscribe(event, socket string, expire int) {
	s.mu.Lock()
	i := slices.IndexFunc(s.subs, func(sub *Subscription) bool { return sub.Event == event && sub.Socket == socket })
	switch {
	case expire == 0 && i >= 0:
		s.subs = slices.Delete(s.subs, i, i+1)
	case expire == 0:
	case i >= 0:
		s.subs[i].Expire, s.subs[i].Renewed = expire, time.Now()
	default:
		s.subs = append([]*Subscription{{Event: event, Socket: socket, Expire: expire, Renewed: time.Now()}}, s.subs...)
	}
	s.mu.Unlock()
	s.rec.notify()
}

// Subscriptions returns the live subscribers of event ("" for every event),
// newest first.
func (s *Server) Subscriptions(event string) []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(time.Now())
	var out []Subscription
	for _, sub := range s.subs {
		if event == "" || sub.Event == event {
			out = append(out, *sub)
		}
	}
	return out
}

func (s *Server) purgeLocked(now time.Time) {
	s.subs = slices.DeleteFunc(s.subs, func(sub *Subscription) bool { return sub.expired(now) })
}

// eventID returns an event's id in events_list, -1 when not published.
func (s *Server) eventID(event string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Index(s.published, event)
}

// validSocket accepts the socket schemes of event_datagram (udp:, unix:)
// and event_stream (tcp:).
func validSocket(sock string) bool {
	scheme, addr, ok := strings.Cut(sock, ":")
	if !ok {
		return false
	}
	switch scheme {
	case "udp", "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return false
		}
		n, err := strconv.Atoi(port)
		return err == nil && n > 0 && n <= 65535
	case "unix":
		return addr != ""
	}
	return false
}

// subscribersList serves subscribers_list / evi:subscribers.
func (s *Server) subscribersList(r *request) {
	var event, socket string
	if r.params != nil {
		var bad bool
		get := func(k string, i int) string {
			var v *fastjson.Value
			if r.params.Type() == fastjson.TypeArray {
				a, _ := r.params.Array()
				if i < len(a) {
					v = a[i]
				}
			} else {
				v = r.params.Get(k)
			}
			if v == nil {
				return ""
			}
			b, err := v.StringBytes()
			if err != nil {
				bad = true
			}
			return string(b)
		}
		event, socket = get("event", 0), get("socket", 1)
		if bad {
			s.replyError(r, errBadParamValue)
			return
		}
	}
	now := time.Now()
	subs := s.Subscriptions(event)
	appendSub := func(b []byte, sub Subscription) []byte {
		b = append(b, `{"socket":`...)
		b = jsonrpc.AppendString(b, sub.Socket)
		b = append(b, `,"expire":`...)
		b = strconv.AppendInt(b, int64(sub.Expire), 10)
		b = append(b, `,"ttl":`...)
		b = strconv.AppendInt(b, int64(sub.ttl(now)), 10)
		return append(b, '}')
	}
	var b []byte
	if event == "" {
		b = append(b, `{"Events":[`...)
		first := true
		s.mu.Lock()
		published := slices.Clone(s.published)
		s.mu.Unlock()
		for id, name := range published {
			var mine []Subscription
			for _, sub := range subs {
				if sub.Event == name {
					mine = append(mine, sub)
				}
			}
			if len(mine) == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, `{"name":`...)
			b = jsonrpc.AppendString(b, name)
			b = append(b, `,"id":`...)
			b = strconv.AppendInt(b, int64(id), 10)
			b = append(b, `,"Subscribers":[`...)
			for i, sub := range mine {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendSub(b, sub)
			}
			b = append(b, "]}"...)
		}
		b = append(b, "]}"...)
		s.replyResult(r, b)
		return
	}
	id := s.eventID(event)
	if id < 0 {
		s.replyError(r, errNotPublished)
		return
	}
	b = append(b, `{"Event":{"name":`...)
	b = jsonrpc.AppendString(b, event)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	if socket != "" {
		i := slices.IndexFunc(subs, func(sub Subscription) bool { return sub.Socket == socket })
		if i < 0 {
			s.replyError(r, miError(404, "Subscriber not found"))
			return
		}
		b = append(b, `,"Subscriber":`...)
		b = appendSub(b, subs[i])
		b = append(b, "}}"...)
		s.replyResult(r, b)
		return
	}
	b = append(b, `,"Subscribers":[`...)
	for i, sub := range subs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSub(b, sub)
	}
	b = append(b, "]}}"...)
	s.replyResult(r, b)
}

// eventsList serves events_list / evi:list.
func (s *Server) eventsList(r *request) {
	s.mu.Lock()
	published := slices.Clone(s.published)
	s.mu.Unlock()
	b := []byte(`{"Events":[`)
	for id, name := range published {
		if id > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = jsonrpc.AppendString(b, name)
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	s.replyResult(r, b)
}

// which serves which / core:which.
func (s *Server) which(r *request) {
	if r.params == nil || r.params.Type() == fastjson.TypeObject && r.params.GetObject().Len() == 0 {
		s.replyResult(r, []byte(WhichAll))
		return
	}
	var cmd []byte
	if r.params.Type() == fastjson.TypeArray {
		a, _ := r.params.Array()
		if len(a) == 1 {
			cmd, _ = a[0].StringBytes()
		}
	} else {
		cmd = r.params.GetStringBytes("command")
	}
	res, ok := whichParams[string(cmd)]
	if !ok {
		s.replyError(r, miError(404, "Unknown command"))
		return
	}
	s.replyResult(r, []byte(res))
}
