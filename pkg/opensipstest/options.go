package opensipstest

import (
	"log/slog"
	"time"
)

// Options configure a fake OpenSIPS. The zero value is usable: an MI socket
// that drops nothing and answers as fast as it can, no transaction limit,
// and deliveries that do not depend on registrations.
type Options struct {
	// MIAddr is the mi_datagram UDP address, "127.0.0.1:0" when "".
	MIAddr string
	// FrTimeout is tm's fr_timeout: how long a t_uac_dlg to a URI set with
	// SetNoAnswer waits before its "408 Request Timeout"; 300 ms when 0 (the
	// captures used 4 s).
	FrTimeout time.Duration
	// ReplyDelay is how long a t_uac_dlg "transaction" takes before its
	// final reply, unless SetDelay says otherwise for the URI; 0 answers
	// at once (still asynchronously).
	ReplyDelay time.Duration
	// DefaultStatus is the final status of a delivery no rule matches,
	// "200 OK" when "".
	DefaultStatus string

	// MIRecvBuffer bounds the MI socket's receive buffer, in datagrams: the
	// fake reads its socket as fast as it can into a queue of this many
	// requests, and a request that arrives while the queue is full is
	// dropped, never answered, and counted (Dropped), as the kernel drops
	// what overflows OpenSIPS's MI socket. 0 sets no bound in datagrams.
	// The captured OpenSIPS answered 335 of 1,000 t_uac_dlg sent back to
	// back in 15 ms (t_uac_dlg in the captures' README): a few hundred is
	// a realistic value.
	MIRecvBuffer int
	// MIRecvBufferBytes bounds the same queue in bytes of payload. The
	// kernel also counts each datagram's bookkeeping (its skb), so a real
	// receive buffer of N bytes holds fewer requests than this one would.
	// 0 sets no bound in bytes; with both bounds 0 nothing is dropped.
	MIRecvBufferBytes int
	// MIRate is how many MI requests per second the fake processes, like
	// the one OpenSIPS process that serves mi_datagram: requests wait in
	// the receive buffer meanwhile. 0 processes them as fast as it can.
	// The measured OpenSIPS served about 8,000 t_uac_dlg/s through one
	// MI process (perf/results.txt, 2026-11-29).
	MIRate float64
	// MaxTransactions caps the t_uac_dlg transactions in progress (from
	// the request until its final reply). Beyond it a t_uac_dlg is refused
	// as OpenSIPS refuses one when tm cannot allocate a transaction in
	// shared memory (RefusedCode, RefusedMessage); 0 sets no cap.
	MaxTransactions int
	// ShmSize is the fake's shared memory (opensips -m), in bytes, 1 GB
	// when 0, as get_statistics "shmem:" reports it (captured from the
	// real build as pkg/opensips/testdata/get_statistics_shmem): ShmBase
	// (4 MB when 0, what the idle build used) taken by OpenSIPS itself,
	// plus ShmPerTransaction (8 KB when 0) for each t_uac_dlg transaction
	// in progress. A transaction that does not fit is refused as
	// MaxTransactions refuses one, as tm refuses one when its shm_malloc
	// fails.
	ShmSize, ShmBase, ShmPerTransaction int64
	// RequireRegistration routes every t_uac_dlg through the location
	// table, as a request-URI without port is when it goes back into
	// OpenSIPS's own lookup("location"): an AOR without a live contact
	// gets the proxy's "404 Not Found" at once (captured as
	// t_uac_dlg/via_proxy_unregistered_404), a registered one follows its
	// per-URI rule. See Register.
	RequireRegistration bool
	// UsrlocTimer is usrloc's timer_interval: how often contacts past their
	// expiry are removed, with the events of ExpireContact. 0 removes them
	// only when ExpireContact is called (an expired contact is listed as
	// "expired" and no longer routes meanwhile).
	UsrlocTimer time.Duration

	// RoomPrefix plays the project's script fragment for t_uac_dlg: a
	// MESSAGE whose request-URI user starts with it (a room, the manager)
	// is answered "202 Accepted" and raised as an event, as OpenSIPS does
	// when imcd sends one to itself (its canary); it is not a Delivery.
	// "chat-" when ""; NoScript turns it off.
	RoomPrefix string
	NoScript   bool

	// EventName is the event Raise sends, "E_IMC_MESSAGE" when "".
	EventName string
	// Events are published in addition to the captured events_list (which
	// includes E_IMC_MESSAGE and the usrloc events); event_subscribe
	// refuses other names.
	Events []string
	// Reliable sends event_stream events as requests with an id and waits
	// for the subscriber's reply (event_stream reliable_mode=1).
	Reliable bool
	// ReliableTimeout is how long Raise waits for that reply; 1 s when 0
	// (event_stream's timeout default).
	ReliableTimeout time.Duration
	// EventParam is the param naming the event in reliable mode,
	// "opensips_event" when "" (event_stream's event_param).
	EventParam string
	// Logger receives the fake's debug logs; nil discards.
	Logger *slog.Logger
}
