// Package store persists imcd's rooms and members in OpenSIPS's standard
// imc_rooms and imc_members tables, on MySQL/MariaDB, PostgreSQL or SQLite.
//
// It owns the SQL: connecting from an OpenSIPS db_url (package dburl),
// checking and creating the tables, loading every room at start (and chosen
// rooms again after a commit in doubt), and committing one command's changes
// (imc.Change) in one transaction. It writes through: Apply returns only
// after the commit, so the daemon tells users about a change only once it is
// durable. The rows mean what they mean to OpenSIPS's own imc module, which
// can read what imcd wrote.
//
// Beside the standard tables it keeps imcd's own: always the rooms' bans,
// moderation and voices (moderation.go), committed in the transaction of
// the membership change they go with and loaded with the rooms; and, only
// when Config enables them, rooms' history, topics and catch-up marks
// (history.go, topics.go, purge.go), and the keys of events applied once
// across several imcd (events.go). They never alter imc_rooms or
// imc_members, whose rows keep meaning what they mean to the native module.
//
// One dialect value per engine (mysql.go, postgres.go, sqlite.go) holds
// everything that differs between engines: how to connect, the DDL, and how
// to read the driver's errors. Everything else is shared.
//
// Errors the daemon acts on are sentinels: ErrUnavailable (the database
// could not be reached; nothing was committed), ErrInDoubt (with it: the
// commit may or may not have happened; LoadRooms tells), ErrConflict (a
// unique key or a missing row: memory and the tables disagree),
// imc.ErrTooLong (a value does not fit a column). See docs/database.md for
// the operator's view.
package store
