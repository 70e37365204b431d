package mi

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsComplete fails when a command imcd registers (any name or alias,
// which included) has no section in docs/mi.md, or a section lacks one of
// the parts every command's reference has.
func TestDocsComplete(t *testing.T) {
	b, err := os.ReadFile("../../docs/mi.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	heading := regexp.MustCompile(`(?m)^### (\S+)$`)
	alias := regexp.MustCompile("`([^`]+)`")
	sections := heading.FindAllStringSubmatchIndex(string(b), -1)
	for i, m := range sections {
		name := string(b[m[2]:m[3]])
		end := len(b)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		body := string(b[m[1]:end])
		documented[name] = true
		for _, part := range []string{"**Name**: `" + name + "`", "**Aliases**:", "**Description**:", "**Syntax**:", "**Example**", "**Errors**:"} {
			if !strings.Contains(body, part) {
				t.Errorf("docs/mi.md: %s has no %s", name, part)
			}
		}
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "- **Aliases**:") {
				for _, a := range alias.FindAllStringSubmatch(line, -1) {
					documented[a[1]] = true
				}
			}
		}
	}
	admin, _ := recordingAdmin(nil)
	s := newServer(t, state(t, stateEmpty), admin)
	// The daemon registers these two besides IMCCommands.
	for _, c := range []Command{ReloadCommand(nil), HistoryCommand(nil)} {
		if err := s.Registry.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range append(s.Registry.Names(), whichName, coreWhichName) {
		if !documented[name] {
			t.Errorf("docs/mi.md does not document %q", name)
		}
	}
}

// TestPassthroughDocumented fails when a command of DefaultPassthrough is
// missing from the allowlist tables of docs/mi.md and docs/security.md,
// which say why each one is there.
func TestPassthroughDocumented(t *testing.T) {
	for _, doc := range []string{"../../docs/mi.md", "../../docs/security.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range DefaultPassthrough() {
			if !regexp.MustCompile("(?m)^\\|.*`" + regexp.QuoteMeta(name) + "`.*\\|").Match(b) {
				t.Errorf("%s: no table row names %s", doc, name)
			}
		}
	}
}
