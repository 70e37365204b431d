package mi

import "log/slog"

// Attribute keys used in log records.
const (
	keyErr       = "err"
	keyMethod    = "method"
	keyCode      = "code"
	keyDuration  = "duration"
	keyTransport = "transport"
	keyPeer      = "peer"
	keyAddr      = "addr"
	keyReplyFIFO = "reply_fifo"
	keySize      = "size"
	keyPanic     = "panic"
	keyStack     = "stack"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
