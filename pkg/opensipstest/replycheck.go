package opensipstest

import (
	"encoding/json"
	"fmt"
)

// CheckReplyID returns nil when reply is one JSON-RPC 2.0 response as
// encoding/json reads it (stricter than fastjson: "\x01" is no JSON
// escape) whose id is the same JSON value as id, the id a request was
// sent with; else an error saying what is wrong. Tests hold every reply
// imcd writes to it.
func CheckReplyID(reply []byte, id string) error {
	var r struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return fmt.Errorf("%q is not JSON: %w", reply, err)
	}
	if r.JSONRPC != "2.0" {
		return fmt.Errorf("%q is not a JSON-RPC 2.0 reply", reply)
	}
	var sent, back any
	if err := json.Unmarshal([]byte(id), &sent); err != nil {
		return fmt.Errorf("the id %s sent is not JSON: %w", id, err)
	}
	_ = json.Unmarshal(r.ID, &back)
	if sent != back {
		return fmt.Errorf("id %s came back as %s", id, r.ID)
	}
	return nil
}
