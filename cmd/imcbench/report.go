package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// table is the result of one scenario group.
type table struct {
	title   string
	columns []string
	rows    [][]string
	notes   []string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// writeText prints t with aligned columns.
func (t *table) writeText(w io.Writer) {
	width := make([]int, len(t.columns))
	for i, c := range t.columns {
		width[i] = len(c)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], len([]rune(c)))
			}
		}
	}
	fmt.Fprintf(w, "\n== %s\n", t.title)
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(c))))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.columns)
	for _, r := range t.rows {
		line(r)
	}
	for _, n := range t.notes {
		fmt.Fprintln(w, "  * "+n)
	}
}

// writeMarkdown writes t as a Markdown section with a pipe table.
func (t *table) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", t.title)
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	row := func(cells []string) {
		out := make([]string, len(cells))
		for i, c := range cells {
			out[i] = esc(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(out, " | "))
	}
	row(t.columns)
	seps := make([]string, len(t.columns))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "--:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range t.rows {
		row(r)
	}
	if len(t.notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range t.notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// percentile returns the nearest-rank p-quantile (0 < p ≤ 1) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// quantiles sorts ds and returns p50, p99, p99.9 and the maximum.
func quantiles(ds []time.Duration) (p50, p99, p999, maxd time.Duration) {
	slices.Sort(ds)
	if len(ds) == 0 {
		return
	}
	return percentile(ds, 0.50), percentile(ds, 0.99), percentile(ds, 0.999), ds[len(ds)-1]
}

// ms formats a duration in milliseconds with three significant decimals.
func ms(d time.Duration) string {
	v := float64(d) / 1e6
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// num formats a count or rate with thousands separators.
func num(v float64) string {
	n := int64(v + 0.5)
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fixed(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func mb(bytes uint64) string { return fixed(float64(bytes)/(1<<20), 0) + " MiB" }

// machine describes the host: CPU model, logical CPUs, memory, kernel, Go.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v, err := parseStatusKB(b, "MemTotal"); err == nil {
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(v)/(1<<30))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d logical CPUs%s%s, imcbench built with %s", model, runtime.NumCPU(), mem, kernel, runtime.Version())
}

func numCPU() int { return runtime.NumCPU() }
