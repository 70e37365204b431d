package opensips

import (
	"errors"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// TestOutcomeCapturedReplies decodes every captured t_uac_dlg reply.
func TestOutcomeCapturedReplies(t *testing.T) {
	var p fastjson.Parser
	seen := 0
	f := func(name string, wantStatus int, wantReason, wantClass string, wantCode int) {
		t.Helper()
		seen++
		data := readWire(t, "t_uac_dlg/"+name)
		m, err := jsonrpc.Decode(&p, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o := outcomeOf(&m)
		if o.Status != wantStatus || o.Reason != wantReason || o.Class() != wantClass {
			t.Fatalf("%s: outcome %+v class %s, want %d %q %s", name, o, o.Class(), wantStatus, wantReason, wantClass)
		}
		if o.Delivered() != (wantClass == delivery.Class2xx) {
			t.Fatalf("%s: Delivered %v", name, o.Delivered())
		}
		var je *jsonrpc.Error
		if wantCode != 0 && (!errors.As(o.Err, &je) || je.Code != wantCode) {
			t.Fatalf("%s: err %v, want code %d", name, o.Err, wantCode)
		}
		if wantCode == 0 && o.Err != nil {
			t.Fatalf("%s: err %v", name, o.Err)
		}
	}
	f("ok_200.response.json", 200, "200 OK", delivery.Class2xx, 0)
	f("200_with_contact_rr.response.json", 200, "200 OK", delivery.Class2xx, 0)
	f("callid_cseq_given.response.json", 200, "200 OK", delivery.Class2xx, 0)
	f("headers_literal_backslash_crlf.response.json", 200, "200 OK", delivery.Class2xx, 0)
	f("newname_nobody.response.json", 200, "200 OK", delivery.Class2xx, 0)
	f("next_hop.response.json", 200, "200 OK", delivery.Class2xx, 0)
	f("via_proxy_registered.response.json", 200, "200 OK", delivery.Class2xx, 0)
	f("fifo_t_uac_dlg_200.response.txt", 200, "200 OK", delivery.Class2xx, 0)
	f("404.response.json", 404, "404 Not Found", delivery.Class4xx, 0)
	f("via_proxy_unregistered_404.response.json", 404, "404 Not Found", delivery.Class4xx, 0)
	f("480.response.json", 480, "480 Temporarily Unavailable", delivery.Class4xx, 0)
	f("408_no_answer.response.json", 408, "408 Request Timeout", delivery.Class4xx, 0)
	f("port_closed.response.json", 408, "408 Request Timeout", delivery.Class4xx, 0)
	f("unresolvable_host.response.json", 0, "476 Unresolvable destination (476/MI/UAC)", delivery.ClassError, 476)
	f("err_bad_headers.response.json", 0, "400 Bad headers", delivery.ClassError, 400)
	f("err_body_without_ctype.response.json", 0, "400 Content-Type missing", delivery.ClassError, 400)
	f("err_content_length_given.response.json", 0, "400 Content-Length disallowed", delivery.ClassError, 400)
	f("err_cseq_method_mismatch.response.json", 0, "400 CSeq method mismatch", delivery.ClassError, 400)
	f("err_invalid_next_hop.response.json", 0, "400 Invalid next_hop", delivery.ClassError, 400)
	f("err_invalid_ruri.response.json", 0, "400 Invalid ruri", delivery.ClassError, 400)
	f("err_missing_from.response.json", 0, "400 From missing", delivery.ClassError, 400)
	f("err_missing_to.response.json", 0, "400 To missing", delivery.ClassError, 400)
	f("err_missing_headers_param.response.json", 0, "-32602 Invalid params: Named parameters do not match", delivery.ClassError, -32602)
	f("err_positional_params.response.json", 0, "-32602 Invalid params: Command only supports named parameters", delivery.ClassError, -32602)

	files, _ := filepath.Glob(filepath.Join(wire, "t_uac_dlg/*.response.json"))
	if seen != len(files)+1 { // + the fifo reply
		t.Fatalf("checked %d replies, %d captured", seen, len(files)+1)
	}
}

// TestOutcomeClass: the outcomes the client makes itself, and replies it
// cannot read, take their class (delivery.Outcome.Class) and keep the
// client's error.
func TestOutcomeClass(t *testing.T) {
	f := func(o delivery.Outcome, want string, wantErr error) {
		t.Helper()
		if got := o.Class(); got != want || !errors.Is(o.Err, wantErr) {
			t.Fatalf("%+v: class %s, want %s (err %v)", o, got, want, wantErr)
		}
	}
	f(lostOutcome(10*time.Second), delivery.ClassTimeout, ErrTimeout)
	f(notSentOutcome(syscall.ECONNREFUSED), delivery.ClassUnreachable, ErrUnreachable)
	f(abortedOutcome(), delivery.ClassAborted, ErrClosed)

	var p fastjson.Parser
	g := func(reply string, wantErr error) {
		t.Helper()
		m, err := jsonrpc.Decode(&p, []byte(reply))
		if err != nil {
			t.Fatal(err)
		}
		if o := outcomeOf(&m); !errors.Is(o.Err, wantErr) || o.Class() != delivery.ClassError {
			t.Fatalf("%s: %+v", reply, o)
		}
	}
	g(`{"jsonrpc":"2.0","result":"OK","id":1}`, ErrBadReply)
	g(`{"jsonrpc":"2.0","result":{"Status":"2000 OK"},"id":1}`, ErrBadReply)
	g(`{"jsonrpc":"2.0","result":{"Status":"OK"},"id":1}`, ErrBadReply)
	g(`{"jsonrpc":"2.0","result":{"Status":42},"id":1}`, ErrBadReply)
	g(`{"jsonrpc":"2.0","error":"oops","id":1}`, ErrBadReply)
}

// TestOutcomePredicates classifies the captured replies (and the client's
// own outcomes) the way a delivery scheduler acts on them.
func TestOutcomePredicates(t *testing.T) {
	var p fastjson.Parser
	const (
		unreachable = "unreachable"
		overloaded  = "overloaded"
		lost        = "lost"
		notSent     = "not-sent"
		other       = "other"
	)
	kind := func(o delivery.Outcome) string {
		n, k := 0, other
		for _, c := range []struct {
			ok   bool
			name string
		}{{o.MemberUnreachable(), unreachable}, {o.Overloaded(), overloaded}, {o.Lost(), lost}, {o.NotSent(), notSent}} {
			if c.ok {
				n, k = n+1, c.name
			}
		}
		if n > 1 {
			t.Fatalf("%+v: %d predicates hold", o, n)
		}
		return k
	}
	f := func(name, want string) {
		t.Helper()
		m, err := jsonrpc.Decode(&p, readWire(t, "t_uac_dlg/"+name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := kind(outcomeOf(&m)); got != want {
			t.Fatalf("%s: %s, want %s", name, got, want)
		}
	}
	f("ok_200.response.json", other)
	f("404.response.json", unreachable)
	f("via_proxy_unregistered_404.response.json", unreachable)
	f("480.response.json", unreachable)
	f("408_no_answer.response.json", unreachable)
	f("port_closed.response.json", unreachable)
	f("unresolvable_host.response.json", unreachable)
	f("err_bad_headers.response.json", other)
	f("err_missing_from.response.json", other)

	g := func(o delivery.Outcome, want string) {
		t.Helper()
		if got := kind(o); got != want {
			t.Fatalf("%+v: %s, want %s", o, got, want)
		}
	}
	refusal := func(code int, msg string) delivery.Outcome {
		m, err := jsonrpc.Decode(&p, []byte(`{"jsonrpc":"2.0","error":{"code":`+strconv.Itoa(code)+`,"message":"`+msg+`"},"id":1}`))
		if err != nil {
			t.Fatal(err)
		}
		return outcomeOf(&m)
	}
	g(refusal(477, "Send failed (477/MI/UAC)"), unreachable)
	g(refusal(500, "Server error occurred (1/MI/UAC)"), overloaded)
	g(refusal(400, "Bad headers"), other)
	g(lostOutcome(10*time.Second), lost)
	g(notSentOutcome(syscall.ECONNREFUSED), notSent)
	g(abortedOutcome(), other)
	g(delivery.Outcome{Fault: delivery.FaultRefused, Err: ErrBadReply}, other)
}

// TestSendErrorFault: what Send returns when it writes nothing says which
// delivery.Fault it is, and still wraps the client's error.
func TestSendErrorFault(t *testing.T) {
	c := &MIClient{Addr: "udp:127.0.0.1:1"}
	err := c.Send(&imc.Notice{}, 1, func(uint64, delivery.Outcome, bool) { t.Error("done called") })
	var f interface{ Fault() delivery.Fault }
	if !errors.Is(err, ErrClosed) || !errors.As(err, &f) || f.Fault() != delivery.FaultAborted {
		t.Fatalf("Send on a client never opened: %v", err)
	}
}
