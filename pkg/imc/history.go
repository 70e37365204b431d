package imc

import (
	"strconv"
	"strings"
	"time"
)

// Line is a chat line the room keeps in its history: what was relayed, as
// relayed (the "##" escape undone), by whom.
type Line struct {
	Room        URI
	Sender      URI
	ContentType string
	Text        string
}

// Topic is a room's topic and who set it when.
type Topic struct {
	Text  string
	SetBy URI
	At    time.Time
}

// TopicChange is a new topic to store before the notices about it are
// sent; an empty Text clears the topic. The caller stamps the time.
type TopicChange struct {
	Room  URI
	Text  string
	SetBy URI
}

// Why a history query is made, which decides its first line.
type HistoryPurpose uint8

// History purposes.
const (
	// HistoryAsked: a member sent #history.
	HistoryAsked HistoryPurpose = iota + 1
	// HistoryOnJoin: a member just joined (or accepted, or was added).
	HistoryOnJoin
	// HistoryCatchUp: a member who was unreachable is back.
	HistoryCatchUp
)

// HistoryQuery asks the caller to read a room's stored lines and send them
// with Engine.HistoryNotices: the last Last lines, or, with After > 0, the
// lines after sequence number After (at most Last of them, the newest).
type HistoryQuery struct {
	Room      URI
	To        URI
	Last      int
	After     int64
	InReplyTo string
	Purpose   HistoryPurpose
}

// StoredLine is one line read back from a room's history.
type StoredLine struct {
	Seq         int64
	Sender      string
	At          time.Time
	ContentType string
	Body        string
}

// historyTimeLayout is how a line's time is shown: UTC, to the second.
const historyTimeLayout = "2006-01-02 15:04:05"

// CatchUpQuery is the query for the lines member missed in room after the
// line numbered after, while they could not be reached: at most
// CatchUpMax of them, the newest.
func (e *Engine) CatchUpQuery(room, member URI, after int64) HistoryQuery {
	return HistoryQuery{Room: room, To: member, Last: e.cfg.CatchUpMax, After: after, Purpose: HistoryCatchUp}
}

// HistoryNotices formats lines (oldest first) for q's recipient, as few
// MESSAGEs as MaxBody allows: a first line saying what follows, then one
// line per stored line, "[time] sender: text". total is how many lines
// the query matched (more than len(lines) when some are left out). No
// lines and nothing left out gives no notice on join and catch-up, and
// "no history yet" to #history. A catch-up notice's Seq is the number of
// the newest line it carries, so that delivering it moves the member's
// mark on.
func (e *Engine) HistoryNotices(q HistoryQuery, lines []StoredLine, total int64) []Notice {
	skipped := total - int64(len(lines))
	var head string
	switch q.Purpose {
	case HistoryAsked:
		if len(lines) == 0 {
			return []Notice{{From: q.Room, To: q.To, Body: txtNoHistory(q.Room), ContentType: textPlain, InReplyTo: q.InReplyTo}}
		}
		head = txtHistoryHead(q.Room, len(lines), total)
	case HistoryOnJoin:
		if len(lines) == 0 {
			return nil
		}
		head = txtHistoryOnJoin(len(lines), total)
	case HistoryCatchUp:
		if total == 0 {
			return nil
		}
		head = txtCatchUp(q.Room, total, skipped)
	}
	max := e.maxText()
	var ns []Notice
	var b strings.Builder
	var seq int64 // the newest line in b, for a catch-up
	b.WriteString(head)
	flush := func() {
		ns = append(ns, Notice{From: q.Room, To: q.To, Body: b.String(), ContentType: textPlain, InReplyTo: q.InReplyTo, Seq: seq})
		b.Reset()
		seq = 0
	}
	for _, l := range lines {
		entry := historyEntry(l)
		if b.Len() > 0 && b.Len()+1+len(entry) > max {
			flush()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(entry)
		if q.Purpose == HistoryCatchUp {
			seq = l.Seq
		}
	}
	if b.Len() > 0 {
		flush()
	}
	return ns
}

// historyEntry is one stored line as shown: "[2026-11-29 12:00:01]
// alice@example.com: text"; a line that was not plain text says its type.
func historyEntry(l StoredLine) string {
	sender := strings.TrimPrefix(l.Sender, "sip:")
	var b strings.Builder
	b.Grow(len(historyTimeLayout) + len(sender) + len(l.Body) + 8)
	b.WriteByte('[')
	b.WriteString(l.At.UTC().Format(historyTimeLayout))
	b.WriteString("] ")
	b.WriteString(sender)
	b.WriteString(": ")
	if ct := l.ContentType; ct != "" && !strings.HasPrefix(strings.ToLower(ct), textPlain) {
		b.WriteString("(" + ct + ") ")
	}
	b.WriteString(l.Body)
	return b.String()
}

// historyCount parses #history's optional count: default when absent,
// capped at max.
func historyCount(params []string, def, max int) (int, bool) {
	if len(params) == 0 {
		return def, true
	}
	n, err := strconv.Atoi(params[0])
	if err != nil || n < 1 {
		return 0, false
	}
	return min(n, max), true
}
