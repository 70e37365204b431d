package imc

import "strings"

// history: a member asks for the room's last lines; the caller reads them
// (Result.History) and sends them with HistoryNotices.
func (c *call) history() Result {
	if !c.e.cfg.History {
		return c.refuse(txtNoHistoryKept)
	}
	if c.in.manager {
		return c.refuse(txtRoomOnly(c.in.RURI, c.usage()))
	}
	r := c.lookup()
	if r == nil {
		return c.refuse(txtNoSuchRoom(c.in.room))
	}
	if _, msg := c.activeSender(txtPending(c.e.sc, r.URI)); msg != "" {
		return c.refuse(msg)
	}
	n, ok := historyCount(c.in.cmd.Params, c.e.cfg.HistoryDefault, c.e.cfg.HistoryMax)
	if !ok || len(c.in.cmd.Params) > 1 {
		return c.refuse(txtHistoryUsage(c.usage(), c.e.cfg.HistoryMax))
	}
	res := c.ok(nil, nil)
	res.History = &HistoryQuery{Room: r.URI, To: c.in.From, Last: n, InReplyTo: c.in.replyID, Purpose: HistoryAsked}
	return res
}

// topic: anyone who may see the room reads its topic (anyone a public
// room's, members a private room's: an invitee is asked to accept first,
// as #list and #history ask); the owner and admins set it ("-" clears
// it), and the room is told.
func (c *call) topic() Result {
	if !c.e.cfg.History {
		return c.refuse(txtNoTopicsKept)
	}
	if c.in.manager {
		return c.refuse(txtRoomOnly(c.in.RURI, c.usage()))
	}
	r := c.lookup()
	if r == nil {
		return c.refuse(txtNoSuchRoom(c.in.room))
	}
	text := topicText(c.in.Req.Body, c.in.cmd.Name)
	m, member := r.Member(c.in.From)
	if text == "" {
		if r.Private() {
			if _, msg := c.activeSender(txtPending(c.e.sc, r.URI)); msg != "" {
				return c.refuse(msg)
			}
		}
		return c.ok(nil, []Notice{c.reply(r.URI, txtTopic(r.topic))})
	}
	switch {
	case !member || !m.Active():
		return c.refuse(txtNotMember(r.URI))
	case !m.Owner() && !m.Admin():
		return c.refuse(txtTopicNotAllowed(r.URI))
	case len(text) > c.e.maxText():
		return c.refuse(txtTopicTooLong(c.e.maxText()))
	}
	body := txtTopicSet(c.in.From, text)
	if text == "-" {
		text, body = "", txtTopicCleared(c.in.From)
	}
	res := c.ok(nil, c.answer().tell(nil, r, body, active))
	res.Topic = &TopicChange{Room: r.URI, Text: text, SetBy: c.in.From}
	return res
}

// topicText is what follows "#topic" in body, spaces trimmed.
func topicText(body, name string) string {
	i := strings.Index(strings.ToLower(body), strings.ToLower(name))
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(body[i+len(name):])
}

// maxText bounds what is not a relayed chat line (a topic, one history
// MESSAGE): MaxBody, or its default when MaxBody leaves chat lines
// uncapped.
func (e *Engine) maxText() int {
	if e.cfg.MaxBody > 0 {
		return e.cfg.MaxBody
	}
	return DefaultConfig().MaxBody
}

// joinExtras adds what a new member gets besides "has joined": the topic,
// and a query for the room's last lines.
func (c *call) joinExtras(res Result, r *Room, joiner URI) Result {
	if !c.e.cfg.History || res.Outcome != OK {
		return res
	}
	if r.topic.Text != "" {
		res.Notices = append(res.Notices, c.answer().to(r.URI, joiner, txtTopic(r.topic)))
	}
	if n := c.e.cfg.HistoryOnJoin; n > 0 {
		// Not a reply to the #join, even the joiner's own: the lines said
		// before the join go in the room's flow to the joiner, where the
		// lines said after it queue behind them. As a reply they would be
		// a flow of their own, and the next lines would overtake them.
		res.History = &HistoryQuery{Room: r.URI, To: joiner, Last: n, Purpose: HistoryOnJoin}
	}
	return res
}
