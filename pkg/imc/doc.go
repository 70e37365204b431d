// Package imc is the conference domain of imcd: rooms, members, their roles,
// the IMC command language and the rules that turn one MESSAGE into state
// changes and outbound notices.
//
// It is pure: no I/O, no clocks, no goroutines, and it imports nothing else
// from imcd. The daemon owns concurrency (one shard goroutine per set of rooms),
// the store persists the Changes a Result carries, and the OpenSIPS link turns
// Notices into t_uac_dlg requests. Everything here can therefore be tested by
// feeding a Request and comparing the Result.
//
// One request goes Engine.Prepare (parse the addresses, recognise the
// command, name the room: Input.RoomKey, which the daemon routes by), then
// Engine.Handle against a View of the rooms. The caller commits
// Result.Changes, applies them with Rooms.Apply, and only then sends
// Result.Notices. Delivery failures of invitations come back through
// Engine.InvitationFailed, a failed commit is answered with
// Engine.Unavailable, and operator actions from the MI go through
// Engine.Admin.
//
// A Room is immutable once built: Rooms.Apply replaces a changed room with a
// new value (copy on write), so readers in other goroutines that hold a *Room
// never see it change under them.
//
// Files: the rules are in handle*.go (one file per group of commands),
// every text a user can receive in texts.go, the command table in
// prepare.go, operator actions in admin.go, a room's bans, moderation and
// voices in moderation.go (kept beside the standard flags, never in them).
package imc
