// Package doccheck keeps the documents that describe the code true: its
// test compares docs/ARCHITECTURE.md's package table with the imports of
// every package, so the table cannot drift when code moves. It has no code
// of its own.
package doccheck
