// Command report turns `go test -bench -json` output into the benchmark
// report: bench/results/<date>-<host>.json, a markdown table, an SVG chart
// and the benchmarks' own output (.log). It prints a progress line per
// benchmark as they finish.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Result is one benchmark: every metric it reported, the median over its
// runs (go test -count), with the smallest and largest value seen.
type Result struct {
	Name    string                `json:"name"`
	Runs    int                   `json:"runs"`
	Metrics map[string]float64    `json:"metrics"` // median
	Spread  map[string][2]float64 `json:"spread"`  // min, max
}

// aggregate folds the runs of each benchmark into one Result, in the order
// benchmarks first appeared.
func aggregate(runs []Result) []Result {
	var order []string
	byName := map[string][]Result{}
	for _, r := range runs {
		if _, ok := byName[r.Name]; !ok {
			order = append(order, r.Name)
		}
		byName[r.Name] = append(byName[r.Name], r)
	}
	var out []Result
	for _, name := range order {
		rs := byName[name]
		res := Result{Name: name, Runs: len(rs), Metrics: map[string]float64{}, Spread: map[string][2]float64{}}
		values := map[string][]float64{}
		for _, r := range rs {
			for k, v := range r.Metrics {
				values[k] = append(values[k], v)
			}
		}
		for k, vs := range values {
			sort.Float64s(vs)
			res.Metrics[k] = median(vs)
			res.Spread[k] = [2]float64{vs[0], vs[len(vs)-1]}
		}
		out = append(out, res)
	}
	return out
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Report is one run.
type Report struct {
	Date    string   `json:"date"`
	Host    string   `json:"host"`
	CPU     string   `json:"cpu"`
	Cores   int      `json:"cores"`
	Kernel  string   `json:"kernel"`
	Results []Result `json:"results"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// parse reads go test -json events (or plain output) and returns the
// results, printing progress as it goes and the text go test printed to
// log. Output events are joined back into that text: a benchmark's name
// and its figures can arrive in separate events.
func parse(r io.Reader, progress io.Writer, log io.Writer) ([]Result, string) {
	var results []Result
	cpu := ""
	line := func(text string) {
		fmt.Fprintln(log, text)
		if c, ok := strings.CutPrefix(text, "cpu: "); ok {
			cpu = c
		}
		m := benchLine.FindStringSubmatch(text)
		if m == nil {
			return
		}
		res := Result{Name: m[1], Metrics: map[string]float64{}}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				res.Metrics[f[i+1]] = v
			}
		}
		results = append(results, res)
		fmt.Fprintf(progress, "done %-50s %s\n", res.Name, summary(res))
	}
	pending := "" // output not yet ended by a newline
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		text := sc.Text() + "\n"
		var ev struct{ Action, Output string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Action != "" {
			if ev.Action != "output" {
				continue
			}
			text = ev.Output
		}
		pending += text
		for {
			before, after, ok := strings.Cut(pending, "\n")
			if !ok {
				break
			}
			line(before)
			pending = after
		}
	}
	if pending != "" {
		line(pending)
	}
	return results, cpu
}

func summary(r Result) string {
	for _, k := range []string{"ns/pkt", "xleaf-Mpps", "routes/s", "ns/route"} {
		if v, ok := r.Metrics[k]; ok {
			return fmt.Sprintf("%.4g %s", v, k)
		}
	}
	return ""
}

// markdown is the report's table.
func markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# xleaf benchmarks, %s, %s (%s, %d cores, Linux %s)\n\n", rep.Date, rep.Host, rep.CPU, rep.Cores, rep.Kernel)
	fmt.Fprintln(&b, "Each figure is the median over the runs, with (min–max) where runs differ.")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| benchmark | runs | metrics |")
	fmt.Fprintln(&b, "|---|---|---|")
	for _, r := range rep.Results {
		keys := make([]string, 0, len(r.Metrics))
		for k := range r.Metrics {
			if k != "ns/op" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var ms []string
		for _, k := range keys {
			m := fmt.Sprintf("%.4g %s", r.Metrics[k], k)
			if sp := r.Spread[k]; r.Runs > 1 && sp[0] != sp[1] {
				m = fmt.Sprintf("%.4g (%.4g–%.4g) %s", r.Metrics[k], sp[0], sp[1], k)
			}
			ms = append(ms, m)
		}
		fmt.Fprintf(&b, "| %s | %d | %s |\n", r.Name, r.Runs, strings.Join(ms, ", "))
	}
	b.WriteString(versusFRR(rep.Results))
	return b.String()
}

// versusFRR sets each BenchmarkBGPScale size beside BenchmarkBGPScaleFRR's
// of the same run: xleafd's figure over FRR's (below 1: xleafd better).
func versusFRR(results []Result) string {
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	var b strings.Builder
	for _, r := range results {
		size, ok := strings.CutPrefix(r.Name, "BenchmarkBGPScale/")
		if !ok {
			continue
		}
		frr, ok := byName["BenchmarkBGPScaleFRR/"+size]
		if !ok {
			continue
		}
		if b.Len() == 0 {
			fmt.Fprintln(&b)
			fmt.Fprintln(&b, "xleafd against FRR 8.4 (bgpd + zebra), the same routes from the same fabric into two VRFs, this run; ratio = xleafd / FRR (below 1: xleafd better):")
			fmt.Fprintln(&b)
			fmt.Fprintln(&b, "| routes | to forwarding state, s | withdrawal, s | peak RSS, MiB |")
			fmt.Fprintln(&b, "|---|---|---|---|")
		}
		cell := func(k string) string {
			x, f := r.Metrics[k], frr.Metrics[k]
			if f == 0 {
				return "-"
			}
			return fmt.Sprintf("%.3g / %.3g = %.2f", x, f, x/f)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", strings.TrimPrefix(strings.TrimSuffix(size, "-2"), "routes="),
			cell("s-announce"), cell("s-withdraw"), cell("peak-RSS-MiB"))
	}
	return b.String()
}

// bar is one bar of the chart.
type bar struct {
	group, label string
	value        float64
}

// chart draws Mpps by path and table size: the packet-rate run (xleaf,
// ceiling, kernel) and, for each table size, 1e3/ns-per-packet of each
// path through test_run.
func chart(rep Report) string {
	var bars []bar
	for _, r := range rep.Results {
		if mode, ok := strings.CutPrefix(r.Name, "BenchmarkPacketRate/"); ok {
			group := "veth, " + mode // routes=1M/cores=1, ipv6/cores=1
			switch mode {
			case "cores=1":
				group = "veth, one core"
			case "cores=2":
				group = "veth, split cores"
			}
			for _, k := range []string{"xleaf", "ceiling", "kernel"} {
				bars = append(bars, bar{group, k, r.Metrics[k+"-Mpps"]})
			}
		}
	}
	for _, r := range rep.Results {
		name, ok := strings.CutPrefix(r.Name, "BenchmarkXDP/")
		if ns := r.Metrics["ns/pkt"]; ok && ns > 0 {
			size, path, _ := strings.Cut(name, "/")
			bars = append(bars, bar{"test_run " + strings.TrimPrefix(size, "routes="), strings.TrimPrefix(path, "path="), 1e3 / ns})
		}
	}
	const w, barH, gap, left = 760, 16, 4, 260
	max := 0.0
	for _, b := range bars {
		if b.value > max {
			max = b.value
		}
	}
	if max == 0 {
		max = 1
	}
	h := len(bars)*(barH+gap) + 60
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&s, `<text x="10" y="20" font-size="14">xleaf: Mpps by path and table size (%s, %s)</text>`+"\n", html.EscapeString(rep.Date), html.EscapeString(rep.CPU))
	for i, b := range bars {
		y := 40 + i*(barH+gap)
		bw := int(float64(w-left-80) * b.value / max)
		color := "#4878a8"
		switch b.label {
		case "ceiling":
			color = "#999999"
		case "kernel":
			color = "#c0504d"
		}
		fmt.Fprintf(&s, `<text x="10" y="%d">%s: %s</text>`+"\n", y+12, html.EscapeString(b.group), html.EscapeString(b.label))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", left, y, bw, barH, color)
		fmt.Fprintf(&s, `<text x="%d" y="%d">%.2f</text>`+"\n", left+bw+4, y+12, b.value)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func main() {
	dir := flag.String("dir", "bench/results", "where the report goes")
	flag.Parse()
	var log strings.Builder
	runs, cpu := parse(os.Stdin, os.Stdout, &log)
	results := aggregate(runs)
	if len(results) == 0 {
		fmt.Fprintln(os.Stderr, "report: no benchmark results in the input")
		os.Exit(1)
	}
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	rep := Report{Date: time.Now().UTC().Format("2006-01-02"), Host: host, CPU: cpu, Cores: runtime.NumCPU(),
		Kernel: strings.TrimSpace(string(kernel)), Results: results}
	base := filepath.Join(*dir, rep.Date+"-"+host)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	for ext, data := range map[string]string{".json": string(js) + "\n", ".md": markdown(rep), ".svg": chart(rep), ".log": log.String()} {
		if err := os.WriteFile(base+ext, []byte(data), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("report: %s.{json,md,svg,log}\n", base)
}
