// Package sockets owns what every imcd socket server shares, so that the
// event servers (pkg/opensips) and imcd's MI transports (pkg/mi) open, serve
// and close one way:
//
//   - Address: OpenSIPS's socket grammar ("tcp:ip:port", "udp:ip:port",
//     "unix:/path"), parsed once for the configuration, the servers and the
//     event subscription (Bound turns a listener's real address back into
//     that grammar, so a server opened on port 0 can subscribe itself);
//   - Lifecycle: Listen(ctx) → Serve() → Close(), Open(ctx) = Listen + Serve
//     in a goroutine; the context given to Listen or Open bounds opening
//     only, never the server's life, which ends with Close;
//   - Listen, ListenPacket and RemoveStale: binding, with the one rule for a
//     unix socket file left by an earlier run (replaced) and for any other
//     file in the way (refused).
package sockets
