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
// A Room is immutable once built: Rooms.Apply replaces a changed room with a
// new value (copy on write), so readers in other goroutines that hold a *Room
// never see it change under them.
package imc
