// Package opensips is imcd's link to OpenSIPS. It owns every byte that
// crosses between the two:
//
//   - event intake: E_IMC_MESSAGE notifications pushed by OpenSIPS's
//     event_stream (TCP, EventStreamServer, with a FrameSplitter since objects
//     arrive back to back) and event_datagram (UDP or unix datagram,
//     EventDatagramServer), decoded by DecodeEvent and handed to a Sink;
//   - the MI client (MIClient): JSON-RPC over mi_datagram, used to send each
//     outbound notice as one asynchronous t_uac_dlg request (Send, paced by
//     pkg/delivery, its reply mapped onto delivery.Outcome), for synchronous
//     calls (Call) and for pass-through of imcd's own MI (Forward);
//   - the subscription keeper (Subscriber), which keeps imcd subscribed to the
//     event with MI event_subscribe across OpenSIPS restarts.
//
// The wire format is the one captured from a real OpenSIPS in
// testdata/opensips-wire; docs/opensips.md explains it. Nothing here knows the
// IMC rules: events go out as imc.Request, notices come in as imc.Notice, and
// metrics leave through the Observer interface.
//
// Goroutines are fixed in number: one per listener, one per event_stream
// connection (at most EventStreamServer.MaxConns), and a reader and a
// timeout reaper per MIClient. No
// goroutine is started per event or per notice.
package opensips
