// Package delivery schedules imcd's outbound notices into OpenSIPS. It sits
// between the shards, which produce notices, and the MI clients, which write
// one t_uac_dlg request per notice, and it owns every decision about when a
// notice is written and to which OpenSIPS:
//
//   - admission: Submit takes a whole batch (one chat line's fan-out) or
//     refuses it at once with ErrBusy; memory is bounded everywhere;
//   - fairness: urgent notices (direct replies to a sender) go before bulk
//     fan-out, rooms take turns one notice at a time, and each member sees a
//     room's notices in the order they were submitted;
//   - two limits per OpenSIPS endpoint: a paced write rate (a token bucket
//     whose rate adapts by AIMD to lost and late replies) and a cap on the
//     transactions imcd keeps alive in OpenSIPS's shared memory;
//   - per-member reachability: a member whose MESSAGE ends 404/408/480 (or
//     whose address does not resolve) is marked unreachable and later
//     notices are kept for them, bounded by count and age, until they come
//     back (Reachable, or a probe with exponential backoff); with
//     FillCatchUp, what was dropped for them in a room is replaced by a
//     catch-up from the room's history, from the last line delivered to
//     them (their mark, reported by OnMarks and restored by Away after a
//     restart);
//   - accounting: every admitted notice ends in exactly one Result.
//
// It speaks no wire: a Sender writes the requests and reports how each
// ended as an Outcome (a final SIP status, or the Fault that left none),
// onto which pkg/opensips's MI client maps OpenSIPS's t_uac_dlg replies.
//
// docs/delivery.md explains the design and its configuration.
//
// Goroutines: one, the scheduler loop (pacing, writing through the Senders,
// sweeping timers, and calling every Done and Observer callback). State is
// guarded by one mutex that is never held across I/O or a callback; the
// Senders' own goroutines (an MI client's reader and reaper) report outcomes
// under it. Nothing is started per notice or per member.
package delivery
