// Package opensipstest is a fake OpenSIPS for tests and demos, in the spirit
// of net/http/httptest. It speaks the wire exactly as captured from a real
// OpenSIPS in testdata/opensips-wire:
//
//   - MI over mi_datagram (UDP on 127.0.0.1): t_uac_dlg / tm:uac_dlg with
//     OpenSIPS's validation and error replies byte for byte, and asynchronous
//     final replies sent when the fake "transaction" ends (so possibly out of
//     order); event_subscribe / evi:subscribe, subscribers_list, events_list,
//     which; anything else gets -32601 unless a handler was installed with
//     Handle. A request without a method, or a JSON array, would crash the
//     real mi_datagram: the fake counts it (Crashes) and does not answer.
//   - events: Raise sends an E_IMC_MESSAGE to every subscriber, formatted
//     like OpenSIPS's event_datagram (one UDP or unix datagram, refused over
//     65,507 bytes) and event_stream (one persistent TCP connection per
//     subscriber, objects back to back, optionally in reliable mode).
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
// synchronous JSON-RPC error), SetDelay. Restart forgets every subscription,
// as a real OpenSIPS restart does, and keeps the MI address.
//
// The package must not import pkg/opensips, whose tests use it.
package opensipstest
