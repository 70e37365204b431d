// Package flood protects the room engine from the two floods a SIP edge
// sees: one sender posting faster than a person types or making imcd send
// more than a person could (Limiter, token buckets per sender for the
// events and for the deliveries they cause) and the same MESSAGE raised twice (Dedup, a window of
// recently seen Call-ID/CSeq pairs, for retransmissions that reached the
// script twice).
//
// Both are safe for concurrent use, keep their state in a fixed number of
// mutex-guarded shards, forget idle keys without a goroutine of their own,
// and take the time as an argument so tests need no clock.
package flood
