package monitoringtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// selector is one vector selector of a PromQL expression: a metric name
// and the label names it matches on.
type selector struct {
	metric string
	labels []string
}

// Words of PromQL that are not metric names: aggregation operators (which
// may be followed by `by (…)` before their parenthesis), set and
// comparison keywords, and the clauses that take a list of labels.
var (
	aggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
		"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true}
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true}
	labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
)

// selectors finds the vector selectors of a PromQL expression as Grafana
// or Prometheus holds it (Grafana's $variables allowed). It is a scanner,
// not a parser: it knows what tells a metric name from a function, a
// keyword or a label, which is all the test needs, and refuses what it
// does not understand rather than guess.
func selectors(expr string) ([]selector, error) {
	var out []selector
	s := expr
	i := 0
	skipSpace := func() {
		for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
			i++
		}
	}
	for i < len(s) {
		c := s[i]
		switch {
		case strings.ContainsRune(" \t\r\n", rune(c)):
			i++
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '[': // a range or subquery: durations, $__rate_interval
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ in %q", expr)
			}
			i += end + 1
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unclosed ${ in %q", expr)
				}
				i += end + 1
			} else {
				for i < len(s) && isIdent(s[i], true) {
					i++
				}
			}
		case c == '{':
			labels, end, err := matchers(s, i)
			if err != nil {
				return nil, fmt.Errorf("%w in %q", err, expr)
			}
			if len(out) == 0 || out[len(out)-1].labels != nil || !followsName(s, i) {
				return nil, fmt.Errorf("a selector without a metric name in %q", expr)
			}
			out[len(out)-1].labels = labels
			i = end
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i], true) || s[i] == '.') {
				i++
			}
		case isIdent(c, false):
			start := i
			for i < len(s) && isIdent(s[i], true) {
				i++
			}
			word := s[start:i]
			skipSpace()
			next := byte(0)
			if i < len(s) {
				next = s[i]
			}
			switch {
			case labelLists[word]:
				if next != '(' {
					if strings.HasPrefix(word, "group_") { // its list is optional
						continue
					}
					return nil, fmt.Errorf("%s without a label list in %q", word, expr)
				}
				end := strings.IndexByte(s[i:], ')')
				if end < 0 {
					return nil, fmt.Errorf("unclosed %s ( in %q", word, expr)
				}
				i += end + 1
			case aggregations[word] || keywords[word] || next == '(':
				// a function, an aggregation or an operator
			default:
				out = append(out, selector{metric: word})
			}
		default:
			i++ // operators, parentheses, commas
		}
	}
	for k := range out {
		if out[k].labels == nil {
			out[k].labels = []string{}
		}
	}
	return out, nil
}

// followsName reports whether the { at s[i] comes right after a name.
func followsName(s string, i int) bool {
	return i > 0 && isIdent(s[i-1], true)
}

func isIdent(c byte, digits bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || digits && c >= '0' && c <= '9'
}

// skipString returns the index after the string literal that starts at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string in %q", s)
}

// matchers reads the label matchers of {…} at s[i] and returns the label
// names and the index after the }.
func matchers(s string, i int) ([]string, int, error) {
	var labels []string
	i++
	for {
		for i < len(s) && strings.ContainsRune(" \t\r\n,", rune(s[i])) {
			i++
		}
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unclosed {")
		}
		if s[i] == '}' {
			return labels, i + 1, nil
		}
		start := i
		for i < len(s) && isIdent(s[i], true) {
			i++
		}
		if start == i {
			return nil, 0, fmt.Errorf("no label name at %q", s[start:])
		}
		labels = append(labels, s[start:i])
		for i < len(s) && strings.ContainsRune(" =!~", rune(s[i])) {
			i++
		}
		if i >= len(s) || s[i] != '"' && s[i] != '\'' && s[i] != '`' {
			return nil, 0, fmt.Errorf("no value for label %s", labels[len(labels)-1])
		}
		end, err := skipString(s, i)
		if err != nil {
			return nil, 0, err
		}
		i = end
	}
}

func TestSelectors(t *testing.T) {
	f := func(expr string, want ...string) {
		t.Helper()
		got, err := selectors(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		var s []string
		for _, g := range got {
			s = append(s, g.metric+"{"+strings.Join(g.labels, ",")+"}")
		}
		if !slices.Equal(s, want) {
			t.Fatalf("%q: %v, want %v", expr, s, want)
		}
	}
	f(`up{job="imcd"} == 0`, "up{job}")
	f(`sum by (instance) (rate(a_total{result="db_error"}[5m])) > 0`, "a_total{result}")
	f(`histogram_quantile(0.99, sum by (le, op) (rate(h_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))`,
		"h_bucket{job,instance}")
	f(`(sum by (instance) (increase(x_total[5m])) > 0) or (sum without (a) (y{r="b}\"{"}) > 0)`, "x_total{}", "y{r}")
	f(`vector($delivery_rate_max)`)
	f(`a / on(instance) group_left b{c!="d"} offset 5m`, "a{}", "b{c}")
	for _, bad := range []string{`{job="x"}`, `a{job=}`, `rate(a[5m`, `a{b="c"`} {
		if _, err := selectors(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
