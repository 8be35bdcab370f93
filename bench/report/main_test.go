package main

import (
	"strings"
	"testing"
)

// TestParse: benchmark lines from go test -json become results, also when
// a name and its figures come in separate events; the chart and table
// carry them.
func TestParse(t *testing.T) {
	in := `{"Action":"output","Output":"cpu: AMD EPYC\n"}
{"Action":"output","Output":"BenchmarkXDP/routes=1k/path=dci-leak-2         \t       3\t   7668874 ns/op\t         2.186 Mpps\t       457.6 ns/pkt\n"}
{"Action":"output","Output":"BenchmarkXDP/routes=1k/path=dci-leak-2         \t       3\t   7668874 ns/op\t         2.186 Mpps\t       470.0 ns/pkt\n"}
{"Action":"output","Output":"BenchmarkXDP/routes=1k/path=dci-leak-2         \t       3\t   7668874 ns/op\t         2.186 Mpps\t       440.0 ns/pkt\n"}
{"Action":"output","Output":"BenchmarkPacketRate/cores=1-2   \t"}
{"Action":"output","Output":"       1\t8529823495 ns/op\t         4.334 ceiling-Mpps\t         0.3206 kernel-Mpps\t         2.320 xleaf-Mpps\n"}
{"Action":"pass"}
`
	var progress strings.Builder
	var log strings.Builder
	runs, cpu := parse(strings.NewReader(in), &progress, &log)
	if cpu != "AMD EPYC" || len(runs) != 4 {
		t.Fatalf("cpu %q, %d runs", cpu, len(runs))
	}
	rs := aggregate(runs)
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2: %+v", len(rs), rs)
	}
	if r := rs[0]; r.Name != "BenchmarkXDP/routes=1k/path=dci-leak" || r.Runs != 3 || r.Metrics["ns/pkt"] != 457.6 ||
		r.Spread["ns/pkt"] != [2]float64{440, 470} {
		t.Errorf("first result (median of three runs): %+v", r)
	}
	if rs[1].Metrics["xleaf-Mpps"] != 2.32 {
		t.Errorf("second result: %+v", rs[1])
	}
	rep := Report{Date: "2026-11-25", CPU: cpu, Results: rs}
	svg := chart(rep)
	for _, want := range []string{"veth, one core: xleaf", "2.32", "test_run 1k: dci-leak", "<svg"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	md := markdown(rep)
	if !strings.Contains(md, "| BenchmarkPacketRate/cores=1 | 1 | 4.334 ceiling-Mpps") {
		t.Errorf("markdown:\n%s", md)
	}
	if !strings.Contains(md, "457.6 (440–470) ns/pkt") {
		t.Errorf("markdown lacks the spread:\n%s", md)
	}
	if !strings.Contains(log.String(), "BenchmarkPacketRate/cores=1-2   \t       1\t8529823495 ns/op") {
		t.Errorf("log does not hold the joined line:\n%s", log.String())
	}
	if !strings.Contains(progress.String(), "done BenchmarkPacketRate") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

// TestVersusFRR: each BGPScale size beside FRR's, as ratios.
func TestVersusFRR(t *testing.T) {
	got := versusFRR([]Result{
		{Name: "BenchmarkBGPScale/routes=100k", Metrics: map[string]float64{"s-announce": 3, "s-withdraw": 4, "peak-RSS-MiB": 700}},
		{Name: "BenchmarkBGPScaleFRR/routes=100k", Metrics: map[string]float64{"s-announce": 2, "s-withdraw": 2, "peak-RSS-MiB": 500}},
		{Name: "BenchmarkBGPScale/routes=1M", Metrics: map[string]float64{"s-announce": 50}},
	})
	want := "| 100k | 3 / 2 = 1.50 | 4 / 2 = 2.00 | 700 / 500 = 1.40 |"
	if !strings.Contains(got, want) || strings.Contains(got, "| 1M |") {
		t.Errorf("got\n%s\nwant a line %q and none for 1M (no FRR run)", got, want)
	}
}
