package imc

// MaxParams is the number of command parameters the native module reads;
// more make the command refused as malformed rather than silently cut.
const MaxParams = 5

// Command is a parsed IMC command line.
type Command struct {
	// Name is the command name in lower case, without the start character.
	// It is empty for a lone start character, or when a blank follows it.
	Name string
	// Params are the space/tab separated words after the name, at most
	// MaxParams of them.
	Params []string
	// TooMany is set when the line had more than MaxParams parameters.
	TooMany bool
}

// ParseCommand reports whether body is a command and, if so, parses it. Like
// the native module, a body is a command when its first byte is start; only
// the first line counts, and the name runs from the byte after start to the
// first blank (so "# join" has an empty name, as natively). A body starting
// with start twice ("##text") is not a command: it is a chat line, see
// ChatText.
func ParseCommand(body string, start byte) (Command, bool) {
	if len(body) == 0 || body[0] != start || len(body) > 1 && body[1] == start {
		return Command{}, false
	}
	line := body[1:]
	for i := 0; i < len(line); i++ {
		if line[i] == '\r' || line[i] == '\n' {
			line = line[:i]
			break
		}
	}
	i := 0
	for i < len(line) && !isBlank(line[i]) {
		i++
	}
	c := Command{Name: lowerASCII(line[:i])}
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for i < len(line) && !isBlank(line[i]) {
			i++
		}
		if len(c.Params) == MaxParams {
			c.TooMany = true
			break
		}
		if c.Params == nil {
			// One allocation whatever the count: commands are rare next
			// to chat lines, but a #join should not cost four.
			c.Params = make([]string, 0, MaxParams)
		}
		c.Params = append(c.Params, line[j:i])
	}
	return c, true
}

// ChatText returns the text a chat line carries: body itself, or for a body
// starting with the start character twice, body without the first one.
func ChatText(body string, start byte) string {
	if len(body) >= 2 && body[0] == start && body[1] == start {
		return body[1:]
	}
	return body
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
