package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemoTranscript keeps `make demo` working: the conversation must reach
// every user it should.
func TestDemoTranscript(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"sip:chat-1@example.com => alice: *** room was created",
		"sip:chat-1@example.com => bob: <alice@example.com>: hello bob, welcome to chat-1",
		"sip:chat-1@example.com => carol: INVITE from: alice@example.com to sip:chat-1@example.com (Type: '#accept' or '#deny')",
		"sip:chat-1@example.com => bob: Only the owner of sip:chat-1@example.com can use #destroy",
		"sip:chat-1@example.com => alice: <carol@example.com>: #hashtags start with a #",
		"sip:chat-1@example.com => carol: The room has been destroyed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out.String())
		}
	}
}
