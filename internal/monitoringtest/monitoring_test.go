package monitoringtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

const (
	rulesFile     = "../../scripts/monitoring/imcd-alerts.yml"
	dashboardFile = "../../scripts/monitoring/imcd-dashboard.json"
	// rabbitPrefix names the metrics only RabbitMQ mode has.
	rabbitPrefix = "opensips_imc_rabbitmq_"
	// dashboardSchema is the schemaVersion of the Grafana the dashboard is
	// written for (Grafana 11.0); Grafana migrates older ones on load, not
	// newer ones.
	dashboardSchema = 39
)

// notImcd are the metrics the dashboard and the rules name that imcd does
// not export: Prometheus's own `up` for each scrape, and the blackbox
// exporter's probe of /readyz (docs/operations.md).
var notImcd = map[string]bool{"up": true, "probe_success": true}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

var imcdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imcd-monitoring")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imcdBin = filepath.Join(dir, "imcd")
	if err := imcdproc.Build(imcdBin, "../../cmd/imcd"); err != nil {
		fmt.Fprintln(os.Stderr, "building imcd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestAlertingRules: promtool accepts the rules, and each alert fires on
// the series it is about and not on healthy ones (testdata's rule tests).
func TestAlertingRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		msg := "promtool (Debian package prometheus; scripts/test-services.sh installs it) is not installed"
		if os.Getenv("IMCD_TEST_REQUIRE_DB") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// The rule tests run on a copy without the annotations (the test file
	// says why), beside a copy of the test file.
	dir := t.TempDir()
	tests, err := os.ReadFile("testdata/imcd-alerts.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "imcd-alerts.yml"), withoutAnnotations(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", filepath.Join(dir, "test.yml")}} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert has a rule test.
	for _, r := range readRules(t) {
		if !strings.Contains(string(tests), "alertname: "+r.alert+"\n") {
			t.Errorf("alert %s has no test in testdata/imcd-alerts.test.yml", r.alert)
		}
	}
}

// withoutAnnotations is the rules file without its annotations blocks.
func withoutAnnotations(t *testing.T) []byte {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	skip := -1 // the indentation of the annotations: key being skipped
	for _, line := range strings.Split(string(b), "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if skip >= 0 && (strings.TrimSpace(line) == "" || indent > skip) {
			continue
		}
		skip = -1
		if strings.TrimSpace(line) == "annotations:" {
			skip = indent
			continue
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

// rule is one alerting rule: its name and PromQL.
type rule struct{ alert, expr string }

// readRules reads the alerts of the rules file. It knows the two forms
// the file uses for expr: one line, or a folded block (>-) of more
// indented lines.
func readRules(t *testing.T) []rule {
	f, err := os.Open(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []rule
	var block []string
	blockIndent := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if blockIndent >= 0 {
			if trimmed != "" && indent > blockIndent {
				block = append(block, trimmed)
				continue
			}
			rules[len(rules)-1].expr = strings.Join(block, " ")
			block, blockIndent = nil, -1
		}
		switch {
		case strings.HasPrefix(trimmed, "- alert: "):
			rules = append(rules, rule{alert: strings.TrimPrefix(trimmed, "- alert: ")})
		case strings.HasPrefix(trimmed, "expr: "):
			if len(rules) == 0 {
				t.Fatalf("expr before any alert: %q", line)
			}
			if v := strings.TrimPrefix(trimmed, "expr: "); v == ">-" || v == ">" || v == "|" {
				blockIndent = indent
			} else {
				rules[len(rules)-1].expr = v
			}
		}
	}
	if blockIndent >= 0 {
		rules[len(rules)-1].expr = strings.Join(block, " ")
	}
	if len(rules) < 5 {
		t.Fatalf("only %d alerts read from %s", len(rules), rulesFile)
	}
	for _, r := range rules {
		if r.expr == "" {
			t.Fatalf("alert %s: no expr read", r.alert)
		}
	}
	return rules
}

// dashboard is what the test reads of the Grafana dashboard.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasource              `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) dashboard {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows.
func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// TestDashboard: the JSON is a Grafana dashboard of the schema version it
// claims, every panel but rows queries the Prometheus datasource variable
// with PromQL, ids are unique and the grid is 24 wide; it covers what the
// operator watches.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion != dashboardSchema || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q; want schemaVersion %d, a uid and a title", d.SchemaVersion, d.UID, d.Title, dashboardSchema)
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			dsVar = true
		}
	}
	if !dsVar {
		t.Error("no datasource variable of type prometheus: the dashboard cannot be pointed at a Prometheus")
	}
	ids := map[int]bool{}
	var titles []string
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want the prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: target %+v lacks a PromQL expr, a refId or the datasource", p.Title, tg)
			}
			if _, err := selectors(tg.Expr); err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
		}
	}
	// What the operator watches (issue 22): each has its panel.
	for _, want := range []string{"chat lines", "commands", "notices by outcome", "refused lines", "pacing rate against its ceiling",
		"queue depths", "unreachable members", "database latency", "database breaker", "broker connection and queues", "ready (/readyz)"} {
		if !slices.Contains(titles, want) {
			t.Errorf("no panel %q", want)
		}
	}
}

// queries are every PromQL expression of the dashboard and the rules, with
// where each comes from.
func queries(t *testing.T) map[string]string {
	q := map[string]string{}
	for _, r := range readRules(t) {
		q["alert "+r.alert] = r.expr
	}
	d := readDashboard(t)
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			q[fmt.Sprintf("panel %q %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		var query struct {
			Query string `json:"query"`
		}
		if v.Type != "query" || json.Unmarshal(v.Query, &query) != nil {
			continue
		}
		// label_values(selector, label): the label is checked as a
		// selector's would be.
		inner, ok := strings.CutPrefix(query.Query, "label_values(")
		i := strings.LastIndexByte(inner, ',')
		if !ok || i < 0 || !strings.HasSuffix(inner, ")") {
			t.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, query.Query)
		}
		label := strings.TrimSpace(strings.TrimSuffix(inner[i+1:], ")"))
		sel := strings.TrimSpace(inner[:i])
		if !strings.Contains(sel, "{") {
			sel += "{}"
		}
		q["variable "+v.Name] = strings.Replace(sel, "{", "{"+label+`="", `, 1)
	}
	return q
}

// problems lists each metric or label the queries name that scraped lacks;
// only the metrics want accepts are looked at. checked counts the
// selectors looked at.
func problems(queries map[string]string, scraped map[string][]string, want func(metric string) bool) (out []string, checked int) {
	for where, expr := range queries {
		sels, err := selectors(expr)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		for _, s := range sels {
			if notImcd[s.metric] || !want(s.metric) {
				continue
			}
			checked++
			labels, ok := scraped[s.metric]
			if !ok {
				out = append(out, fmt.Sprintf("%s names %s, which imcd's /metrics does not have", where, s.metric))
				continue
			}
			for _, l := range s.labels {
				if !slices.Contains(labels, l) && !slices.Contains(targetLabels, l) {
					out = append(out, fmt.Sprintf("%s matches %s on label %q; its labels are %v (and Prometheus's %v)",
						where, s.metric, l, labels, targetLabels))
				}
			}
		}
	}
	slices.Sort(out)
	return out, checked
}

// scrape reads /metrics: each sample's name (a histogram's _bucket, _sum
// and _count are names of their own, as PromQL sees them) and its label
// names.
func scrape(t *testing.T, p *imcdproc.Proc) map[string][]string {
	code, body := p.Get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			t.Fatalf("/metrics line %q", line)
		}
		name := line[:end]
		labels := out[name]
		if labels == nil {
			labels = []string{}
		}
		if line[end] == '{' {
			for _, l := range labelNames(t, line[end:]) {
				if !slices.Contains(labels, l) {
					labels = append(labels, l)
				}
			}
		}
		out[name] = labels
	}
	return out
}

// labelNames reads the names of {name="value",…}.
func labelNames(t *testing.T, s string) []string {
	var names []string
	i := 1
	for i < len(s) && s[i] != '}' {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			t.Fatalf("labels %q", s)
		}
		names = append(names, s[i:i+eq])
		j := i + eq + 2
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		i = j + 1
		if i < len(s) && s[i] == ',' {
			i++
		}
	}
	return names
}

// checkScrape scrapes p until the queries name nothing it lacks (among
// the metrics want accepts), or 30 s passed: the series of a labelled
// counter appear only once it counted something. It fails the test for
// what is still missing then, and returns how many selectors it checked.
func checkScrape(t *testing.T, p *imcdproc.Proc, want func(string) bool) int {
	qs := queries(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		found, checked := problems(qs, scrape(t, p), want)
		if len(found) == 0 {
			return checked
		}
		if time.Now().After(deadline) {
			for _, f := range found {
				t.Error(f)
			}
			t.Logf("imcd log:\n%s", p.Log.String())
			return checked
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMetricsExist: imcd fed by OpenSIPS's events (the default) has every
// metric the dashboard and the rules name, but RabbitMQ mode's, once it has
// seen commands, chat, deliveries, an undecodable event and its canary's
// probes (the fake plays the fragment's route for them).
func TestMetricsExist(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p, err := imcdproc.Start(imcdproc.Options{Bin: imcdBin, Dir: t.TempDir(), Lines: []string{
		"opensips_mi = " + f.MISocket(), "event_renew = 300ms", "event_expire = 10s", "canary_interval = 1s"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(15 * time.Second)
	const alice, bob, room = "sip:alice@example.com", "sip:bob@example.com", "sip:chat-1@example.com"
	for _, ev := range []opensipstest.Event{
		opensipstest.NewEvent(alice, room, "#create chat-1"),
		opensipstest.NewEvent(bob, room, "#join"),
		opensipstest.NewEvent(alice, room, "hello"),
	} {
		if _, err := f.Raise(ev); err != nil {
			t.Fatal(err)
		}
	}
	// An event without its params: a decode error.
	if err := f.RaiseRaw(p.Addrs.Events, []byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{}}`)); err != nil {
		t.Fatal(err)
	}
	notRabbit := func(m string) bool { return !strings.HasPrefix(m, rabbitPrefix) }
	if n := checkScrape(t, p, notRabbit); n < 20 {
		t.Errorf("only %d selectors checked", n)
	}
}

// TestRabbitMQMetricsExist: imcd consuming RabbitMQ (event_source =
// rabbitmq) has the RabbitMQ metrics the dashboard and the rules name.
func TestRabbitMQMetricsExist(t *testing.T) {
	r := feed.New(t, testbroker.URL(t), 1, true)
	f := opensipstest.New(t, opensipstest.Options{})
	p, err := imcdproc.Start(imcdproc.Options{Bin: imcdBin, Dir: t.TempDir(), Lines: []string{
		"opensips_mi = " + f.MISocket(),
		"event_source = rabbitmq",
		"rabbitmq_url = " + r.URL,
		"rabbitmq_exchange = " + r.Topology.Exchange,
		"rabbitmq_queue_prefix = " + r.Prefix,
		fmt.Sprintf("rabbitmq_shards = %d", len(r.Topology.Queues)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(15 * time.Second)
	if err := r.Publish(feed.Event(opensipstest.NewEvent("sip:alice@example.com", "sip:chat-1@example.com", "#create chat-1"))); err != nil {
		t.Fatal(err)
	}
	rabbit := func(m string) bool { return strings.HasPrefix(m, rabbitPrefix) }
	if n := checkScrape(t, p, rabbit); n < 3 {
		t.Errorf("only %d RabbitMQ selectors checked", n)
	}
}

// TestProblems: a name imcd does not export, or a label its metric does
// not have, is reported; Prometheus's target labels and what is not
// imcd's are not.
func TestProblems(t *testing.T) {
	scraped := map[string][]string{"opensips_imc_commands_total": {"command", "result"}}
	all := func(string) bool { return true }
	found, checked := problems(map[string]string{
		"a": `rate(opensips_imc_no_such_total[5m])`,
		"b": `opensips_imc_commands_total{queue="x", result="ok"}`,
		"c": `sum(opensips_imc_commands_total{job="imcd", instance=~"$instance"}) or up{job="imcd"}`,
	}, scraped, all)
	want := []string{
		"a names opensips_imc_no_such_total, which imcd's /metrics does not have",
		`b matches opensips_imc_commands_total on label "queue"; its labels are [command result] (and Prometheus's [job instance])`,
	}
	if !slices.Equal(found, want) || checked != 3 {
		t.Errorf("problems %q (%d checked), want %q (3 checked)", found, checked, want)
	}
}
