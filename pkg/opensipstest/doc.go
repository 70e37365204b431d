// Package opensipstest is a fake OpenSIPS for tests and demos, in the spirit
// of net/http/httptest. It speaks the wire exactly as captured from a real
// OpenSIPS in testdata/opensips-wire:
//
//   - MI over mi_datagram (UDP on 127.0.0.1): t_uac_dlg / tm:uac_dlg with
//     OpenSIPS's validation and error replies byte for byte, and asynchronous
//     final replies sent when the fake "transaction" ends (so possibly out of
//     order); event_subscribe / evi:subscribe, subscribers_list, events_list,
//     which; ul_show_contact / usrloc:show_contact and ul_dump / usrloc:dump
//     answered from its location table; anything else gets -32601 unless a
//     handler was installed with Handle. A request without a method, or a
//     JSON array, would crash the real mi_datagram: the fake counts it
//     (Crashes) and does not answer.
//   - events: Raise sends an E_IMC_MESSAGE to every subscriber, formatted
//     like OpenSIPS's event_datagram (one UDP or unix datagram, refused over
//     65,507 bytes) and event_stream (one persistent TCP connection per
//     subscriber, objects back to back, optionally in reliable mode).
//   - usrloc: Register, Unregister and ExpireContact change the location
//     table and raise, to the subscribers of each, the E_UL_* events in the
//     order and with the params the captures show.
//
// Under load it behaves like the real one (Options): the MI socket has a
// bounded receive buffer (MIRecvBuffer, MIRecvBufferBytes) filled by a
// reader as fast as datagrams come, and one MI process drains it at
// MIRate; what overflows is dropped unanswered and counted (Dropped), so
// the drop point is the bound itself. t_uac_dlg transactions are counted
// from request to final reply (Outstanding, PeakOutstanding) and capped by
// MaxTransactions, beyond which they are refused the way tm refuses when
// shared memory runs out (RefusedCode, RefusedMessage). With RequireRegistration a
// delivery to an AOR without a live contact gets the proxy's 404 at once.
// PauseMI and WaitMIStats make these deterministic to test.
//
// ReplayCaptured answers captured requests with the captured replies byte
// for byte (for pass-through tests), and SetSilent records requests without
// answering any (a stuck MI process).
//
// New starts one for a test and fails it if the real mi_datagram would have
// crashed on anything it was sent.
//
// Every MI request and every accepted t_uac_dlg is recorded (Calls,
// Deliveries, WaitDeliveries). Per-URI rules choose the outcome of a
// delivery: SetStatus, SetNoAnswer (408 after the fr timeout), SetError (a
// synchronous JSON-RPC error), SetDelay. Restart forgets every
// subscription, registration and transaction in progress, as a real
// OpenSIPS restart does, and keeps the MI address.
//
// Goroutines are fixed in number: the MI socket's reader, the MI process,
// the transaction timer (which sends every final reply), the usrloc timer
// when set, and a reader per event_stream connection.
//
// The package must not import pkg/opensips, whose tests use it.
package opensipstest
