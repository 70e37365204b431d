package store

import (
	"database/sql"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// maxLoggedRows caps the odd rows logged one by one at Load; the rest are
// counted in the summary.
const maxLoggedRows = 100

// maxInterned caps a domain intern table, so that a table with millions
// of distinct domains costs no more than no interning at all.
const maxInterned = 1 << 16

// Native transient bits that may reach the tables when the native module
// writes its memory at shutdown.
const (
	roomDeletedBit    = 2  // IMC_ROOM_DELETED
	memberDeletedBit  = 8  // IMC_MEMBER_DELETED
	memberSkipBit     = 16 // IMC_MEMBER_SKIP
	knownMemberBits   = int64(imc.MemberStored) | memberDeletedBit | memberSkipBit
	knownRoomBits     = int64(imc.RoomPrivate) | roomDeletedBit
	storedMemberBits  = int64(imc.MemberStored)
	storedRoomBitMask = int64(imc.RoomPrivate)
)

// roomEntry is a room being loaded.
type roomEntry struct {
	uri   imc.URI
	flags imc.RoomFlags
	index int32 // position in loader.rooms
}

// pending is a loaded member waiting for its room to be built.
type pending struct {
	user  string
	host  string
	room  int32
	flags imc.MemberFlags
}

// pendingChunkBits sizes the chunks of the pending lists. Chunks, unlike one
// growing slice or a slice per room, are never copied and waste at most one
// partly filled chunk: the members of a large table cost their size once
// while they wait for their rooms.
const (
	pendingChunkBits = 14
	pendingChunk     = 1 << pendingChunkBits
)

// loader holds Load's state. The rooms phase fills it; from indexColumns on
// it is read-only and shared by the member parts that run at once.
type loader struct {
	log          *slog.Logger
	domains      map[string]string     // interned room domains
	rooms        []*roomEntry          // in table order
	byKey        map[string]*roomEntry // by lower-case "name@domain"
	byColumn     map[string]*roomEntry // by "sip:name@domain" exactly as the room row spells it
	skippedRooms map[string]bool       // lower-case "name@domain" of rooms skipped

	logged           atomic.Int32 // odd rows logged so far, across parts
	members, skipped int          // totals, set by build
	roomsSkipped     int
}

func newLoader(log *slog.Logger) *loader {
	return &loader{
		log:          log,
		domains:      make(map[string]string),
		byKey:        make(map[string]*roomEntry),
		skippedRooms: make(map[string]bool),
	}
}

// odd logs an odd row, up to maxLoggedRows of them in all.
func (l *loader) odd(msg string, reason string, row slog.Attr) {
	if l.logged.Add(1) > maxLoggedRows {
		l.logged.Add(-1)
		return
	}
	l.log.Warn(msg, logkey.Reason, reason, row)
}

func intern(m map[string]string, b []byte) string {
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(m) < maxInterned {
		m[s] = s
	}
	return s
}

// room handles one imc_rooms row: name, domain, flag.
func (l *loader) room(c []sql.RawBytes) {
	name, domain := c[0], c[1]
	flag, okFlag := parseInt(c[2])
	var reason string
	switch {
	case !okFlag || flag&^knownRoomBits != 0:
		reason = "unknown flag bits"
	case flag&roomDeletedBit != 0:
		reason = "flag has the native module's transient 'deleted' mark"
	case len(name) > imc.MaxFieldLen || len(domain) > imc.MaxFieldLen:
		reason = "value longer than 64 characters"
	}
	var uri imc.URI
	if reason == "" {
		var err error
		if uri, err = imc.NewURI(string(name), intern(l.domains, domain)); err != nil {
			reason = "name or domain is not a valid SIP address: " + err.Error()
		} else if len(uri.String()) > imc.MaxFieldLen {
			reason = "room URI longer than 64 characters: its members cannot be stored"
		} else if l.byKey[uri.Key()] != nil {
			reason = "duplicate of an earlier room (names differ only in letter case)"
		}
	}
	if reason != "" {
		l.skippedRooms[strings.ToLower(string(name)+"@"+string(domain))] = true
		l.roomsSkipped++
		l.odd("room skipped at load", reason,
			slog.Group(logkey.Row, "name", string(name), "domain", string(domain), "flag", string(c[2])))
		return
	}
	e := &roomEntry{uri: uri, flags: imc.RoomFlags(flag & storedRoomBitMask), index: int32(len(l.rooms))}
	l.rooms = append(l.rooms, e)
	l.byKey[uri.Key()] = e
}

// indexColumns indexes the rooms by the room column their members carry as
// imcd and the native module write it, so that nearly every member row is
// matched to its room by one lookup in a map no part writes to.
func (l *loader) indexColumns() {
	l.byColumn = make(map[string]*roomEntry, len(l.rooms))
	for _, e := range l.rooms {
		l.byColumn[e.uri.String()] = e
	}
}

// memberPart is the members of one id range, read by one goroutine.
type memberPart struct {
	l        *loader
	chunkCap int                   // capacity of a new chunk: pendingChunk, less for few rows
	misses   map[string]*roomEntry // room columns not spelled as the room row; nil: no such room
	domains  map[string]string
	pending  [][]pending
	skipped  int
}

func (l *loader) newPart() *memberPart {
	return &memberPart{l: l, chunkCap: pendingChunk, misses: make(map[string]*roomEntry), domains: make(map[string]string)}
}

func (p *memberPart) add(m pending) {
	n := len(p.pending)
	if n == 0 || len(p.pending[n-1]) == pendingChunk {
		// A chunk started smaller grows by append up to pendingChunk.
		p.pending = append(p.pending, make([]pending, 0, p.chunkCap))
		n++
	}
	p.pending[n-1] = append(p.pending[n-1], m)
}

// member handles one imc_members row: username, domain, room, flag.
func (p *memberPart) member(c []sql.RawBytes) {
	user, domain, roomCol := c[0], c[1], c[2]
	flag, okFlag := parseInt(c[3])
	var reason string
	var e *roomEntry
	switch {
	case !okFlag || flag&^knownMemberBits != 0:
		reason = "unknown flag bits"
	case flag&memberDeletedBit != 0:
		reason = "flag has the native module's transient 'deleted' mark"
	case len(user) > imc.MaxFieldLen || len(domain) > imc.MaxFieldLen || len(roomCol) > imc.MaxFieldLen:
		reason = "value longer than 64 characters"
	default:
		if e = p.resolve(roomCol); e == nil {
			reason = p.l.whyNoRoom(roomCol)
		}
	}
	var uri imc.URI
	if reason == "" {
		var err error
		if uri, err = imc.NewURI(string(user), intern(p.domains, domain)); err != nil {
			reason = "username or domain is not a valid SIP address: " + err.Error()
		}
	}
	if reason != "" {
		p.skipped++
		p.l.odd("member skipped at load", reason, slog.Group(logkey.Row, "username", string(user),
			"domain", string(domain), "room", string(roomCol), "flag", string(c[3])))
		return
	}
	p.add(pending{user: uri.User, host: uri.Host, room: e.index, flags: imc.MemberFlags(flag & storedMemberBits)})
}

// resolve finds the room a member's room column ("sip:name@domain") names,
// ignoring letter case.
func (p *memberPart) resolve(col []byte) *roomEntry {
	if e, ok := p.l.byColumn[string(col)]; ok {
		return e
	}
	if e, ok := p.misses[string(col)]; ok {
		return e
	}
	s := string(col)
	var e *roomEntry
	if u, err := imc.ParseURI(s); err == nil {
		e = p.l.byKey[u.Key()]
	}
	p.misses[s] = e
	return e
}

func (l *loader) whyNoRoom(col []byte) string {
	s := string(col)
	for _, p := range []string{"sip:", "sips:"} {
		if len(s) > len(p) && strings.EqualFold(s[:len(p)], p) {
			if l.skippedRooms[strings.ToLower(s[len(p):])] {
				return "its room was skipped"
			}
			break
		}
	}
	if _, err := imc.ParseURI(s); err != nil {
		return "room column is not a SIP URI"
	}
	return "no such room in the rooms table"
}

// build turns the rooms and the parts' members into imc rooms. The members
// are grouped by room with a counting sort over their positions (4 bytes a
// member), which keeps each room's members in id order; a room's first
// owner stays owner, later ones are kept as plain members.
func (l *loader) build(parts []*memberPart) []*imc.Room {
	// The lookup maps are done with; let the collector have them while the
	// rooms are built.
	l.byKey, l.byColumn, l.domains = nil, nil, nil
	var chunks [][]pending
	l.skipped = l.roomsSkipped
	for _, p := range parts {
		chunks = append(chunks, p.pending...)
		l.skipped += p.skipped
	}
	// A member's position is its chunk << pendingChunkBits | its offset.
	at := func(pos uint32) *pending { return &chunks[pos>>pendingChunkBits][pos&(pendingChunk-1)] }

	// start[i] is where room i's members begin in perm.
	start := make([]int32, len(l.rooms)+1)
	for _, c := range chunks {
		for i := range c {
			start[c[i].room+1]++
		}
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	perm := make([]uint32, start[len(l.rooms)])
	next := append([]int32(nil), start[:len(l.rooms)]...)
	for ci, c := range chunks {
		for i := range c {
			r := c[i].room
			perm[next[r]] = uint32(ci)<<pendingChunkBits | uint32(i)
			next[r]++
		}
	}
	next = nil

	rooms := make([]*imc.Room, 0, len(l.rooms))
	var scratch []imc.Member
	for i, e := range l.rooms {
		scratch = scratch[:0]
		owner := false
		for _, pos := range perm[start[i]:start[i+1]] {
			p := at(pos)
			m := imc.Member{URI: imc.URI{User: p.user, Host: p.host}, Flags: p.flags}
			if m.Owner() {
				if owner {
					m.Flags &^= imc.MemberOwner
					l.odd("member loaded as a plain member", "second owner of the room; the first one stays owner",
						slog.Group(logkey.Row, "username", p.user, "domain", p.host, "room", e.uri.String(), "flag", int(p.flags)))
				}
				owner = true
			}
			scratch = append(scratch, m)
		}
		r := imc.NewRoom(e.uri, e.flags, scratch)
		if n := len(r.Members()); n != len(scratch) {
			l.odd("members merged at load", "rows of one room whose user names differ only in letter case; the last row wins",
				slog.Group(logkey.Row, "room", e.uri.String(), "rows", len(scratch), "members", n))
		}
		l.members += len(r.Members())
		rooms = append(rooms, r)
		l.rooms[i] = nil
	}
	return rooms
}

// parseInt parses a decimal integer column without allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
