package imc

// Request is one MESSAGE as OpenSIPS reported it. Strings are owned by the
// Request (copied out of any parser buffer before they get here).
type Request struct {
	From        string // From URI, with params, no display name
	RURI        string // request URI: a room or the manager
	To          string // To URI
	Body        string
	ContentType string // "" when the MESSAGE had none
	CallID      string
}

// Notice is one MESSAGE to send: one t_uac_dlg request.
type Notice struct {
	From        URI    // the room, or the URI the command was sent to
	To          URI    // the recipient; also the request URI
	Body        string // never empty
	ContentType string // never empty; "text/plain" unless a chat line carried its own text/* type
	// InReplyTo is the Call-ID of the command this notice answers directly
	// (the sender's reply); empty for broadcasts.
	InReplyTo string
	// Invitation is set on the notice that carries an invitation, so that its
	// delivery outcome can be fed back with Engine.InvitationFailed.
	Invitation *Invitation
	// Seq is the history sequence number of the newest history line the
	// notice carries: the chat line of a fan-out (set by whoever records
	// the line), the last line of a catch-up notice; 0 for anything else.
	// Delivery tracks it to know where a member's catch-up starts.
	Seq int64
}

// Invitation identifies a pending invitation whose delivery is in flight.
type Invitation struct {
	Room    URI
	Invitee URI
	Inviter URI
}

// Outcome classifies how a request ended, for metrics and logs.
type Outcome uint8

// Outcomes.
const (
	// OK: the command or chat line did what was asked.
	OK Outcome = iota
	// Refused: the sender was told why nothing happened (permission, no such
	// room, bad argument, ...).
	Refused
)

// String returns "ok" or "refused", the metrics label.
func (o Outcome) String() string {
	if o == OK {
		return "ok"
	}
	return "refused"
}

// Result is what one request produces: the changes to commit, then the
// notices to send once they are committed.
type Result struct {
	// Command is the canonical command name ("join", "invite", ...), "chat"
	// for a chat line, "invitation-failed" for delivery feedback.
	Command string
	Outcome Outcome
	Changes []Change
	Notices []Notice
	// Record is a chat line to keep in the room's history (when the
	// engine's History is on).
	Record *Line
	// Topic is a new topic to store, like Changes: before the notices.
	Topic *TopicChange
	// History asks the caller to read stored lines and send them, after
	// the notices (Engine.HistoryNotices).
	History *HistoryQuery
}
