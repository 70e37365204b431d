// Package mi is imcd's own management interface: the command registry, the
// imc commands (the native module's imc_list_rooms and imc_list_members,
// with its output and error codes, plus imcd's admin commands), `which`, the
// pass-through of every other command to OpenSIPS's MI, and the transports
// opensips-cli speaks: JSON-RPC in UDP or unix datagrams, HTTP POST, and the
// mi_fifo protocol.
//
// Server.Handle turns one raw JSON-RPC request into one raw reply and knows
// nothing of transports, so every transport refuses alike a request that
// OpenSIPS would read otherwise than imcd, and forwards only requests it
// rebuilt from what it parsed (docs/security.md, "The pass-through rule"); each transport owns one listener goroutine (HTTP:
// net/http's) that reads a request, calls Handle inline and writes the reply.
// The imc commands read rooms through an imc.View: rooms are immutable
// values, so a *imc.Room held while encoding is a consistent snapshot, and
// the view holds a shard's lock only while copying pointers.
//
// docs/mi.md is the reference of every command; a test keeps it complete.
package mi
