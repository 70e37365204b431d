package mi

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// ErrNoHistory: the rooms keep no history (history = off, or its tables
// are missing); imc:history answers 400.
var ErrNoHistory = errors.New("mi: the rooms keep no history")

// HistoryReader reads a room's stored lines for an operator (the daemon
// does): the last n, oldest first, and how many the room has.
type HistoryReader interface {
	History(ctx context.Context, room imc.URI, n int) (lines []imc.StoredLine, total int64, err error)
}

// DefaultHistoryLines is what imc:history gives without a lines param.
const DefaultHistoryLines = 20

// maxHistoryLines caps one imc:history answer.
const maxHistoryLines = 1000

// HistoryCommand is imc:history (3.x-style alias imc_history): a room's
// last lines for an operator, as
// {"ROOM":…,"TOTAL":n,"LINES":[{"SEQ":1,"TIME":"2026-11-29T12:00:00.000Z","SENDER":…,"CONTENT_TYPE":…,"BODY":…}]}.
// The body is escaped byte for byte as OpenSIPS escapes event params
// (invalid UTF-8 passes through).
func HistoryCommand(r HistoryReader) Command {
	sets := [][]string{{"room"}, {"room", "lines"}}
	return Command{Name: "imc:history", Aliases: []string{"imc_history"}, Params: sets,
		Handler: func(ctx context.Context, params *fastjson.Value) ([]byte, error) {
			args, err := StringParams(params, sets)
			if err != nil {
				return nil, err
			}
			room, err := uriParam(args, "room")
			if err != nil {
				return nil, err
			}
			n := DefaultHistoryLines
			if v, ok := args["lines"]; ok {
				if n, err = strconv.Atoi(v); err != nil || n < 1 {
					return nil, errBadParam("lines", "a number from 1 to "+strconv.Itoa(maxHistoryLines))
				}
				n = min(n, maxHistoryLines)
			}
			lines, total, err := r.History(ctx, room, n)
			switch {
			case errors.Is(err, imc.ErrNoSuchRoom):
				return nil, &jsonrpc.Error{Code: 404, Message: "no such room"}
			case errors.Is(err, ErrNoHistory):
				return nil, &jsonrpc.Error{Code: 400, Message: "no history", Data: "history is off on this imcd"}
			case err != nil:
				return nil, err
			}
			b := jsonrpc.AppendString([]byte(`{"ROOM":`), room.String())
			b = strconv.AppendInt(append(b, `,"TOTAL":`...), total, 10)
			b = append(b, `,"LINES":[`...)
			for i, l := range lines {
				if i > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(append(b, `{"SEQ":`...), l.Seq, 10)
				b = l.At.UTC().AppendFormat(append(b, `,"TIME":"`...), time.RFC3339Nano)
				b = jsonrpc.AppendString(append(b, `","SENDER":`...), l.Sender)
				b = jsonrpc.AppendString(append(b, `,"CONTENT_TYPE":`...), l.ContentType)
				b = jsonrpc.AppendString(append(b, `,"BODY":`...), l.Body)
				b = append(b, '}')
			}
			return append(b, "]}"...), nil
		}}
}
