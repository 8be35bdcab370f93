package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// record builds a probe record at 1 ms a datagram from a pattern: '.' an
// arrival 1 ms after it was sent, 'x' a loss.
func record(pattern string) Record {
	r := Record{Start: time.Unix(1000, 0), Interval: time.Millisecond}
	for i, c := range pattern {
		var at time.Time
		if c == '.' {
			at = r.Due(i).Add(time.Millisecond)
		}
		r.Arrived = append(r.Arrived, at)
	}
	return r
}

// TestLossOutageIsLongestRun: the outage is the longest run of missing
// numbers times the interval, not all losses; back-after counts from the
// event's end to the first arrival after that run.
func TestLossOutageIsLongestRun(t *testing.T) {
	r := record(".....xx...xxxxx....x..")
	up := r.Due(12) // the run is 10..14: the first arrival after it is 15, at due(15)+1ms
	got := r.Loss(0, up)
	want := Loss{Sent: 22, Lost: 8, Outage: 5 * time.Millisecond, Stray: 3, Back: 4 * time.Millisecond, OutFrom: r.Due(10)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Loss (-want +got):\n%s", diff)
	}
}

// TestLossCountsFromTheMark: datagrams before the event (the flow settling)
// are not the event's.
func TestLossCountsFromTheMark(t *testing.T) {
	r := record("xxxxxxxx......xx....")
	got := r.Loss(8, r.Due(14))
	want := Loss{Sent: 12, Lost: 2, Outage: 2 * time.Millisecond, Back: time.Millisecond + 2*time.Millisecond, OutFrom: r.Due(14)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Loss (-want +got):\n%s", diff)
	}
}

// TestLossBackBeforeUpIsNegative: a flow that was back before the event
// ended (a restart whose outage came and went while the agent was down)
// says so with a negative back-after.
func TestLossBackBeforeUpIsNegative(t *testing.T) {
	r := record("...xxx.......")
	got := r.Loss(0, r.Due(10))
	if got.Back >= 0 || got.Back != r.Arrived[6].Sub(r.Due(10)) {
		t.Errorf("back after %v, want %v", got.Back, r.Arrived[6].Sub(r.Due(10)))
	}
}

func TestLossNoLoss(t *testing.T) {
	got := record("..........").Loss(0, time.Unix(1000, 0))
	if diff := cmp.Diff(Loss{Sent: 10}, got); diff != "" {
		t.Errorf("Loss (-want +got):\n%s", diff)
	}
}

// TestLossDeadPath: a record that ends in a run of DeadAfter or more is a
// path that did not come back; a short run at the end is not.
func TestLossDeadPath(t *testing.T) {
	dead := ".........." + strings.Repeat("x", int(DeadAfter/time.Millisecond))
	got := record(dead).Loss(0, time.Unix(1000, 0))
	if !got.Dead || got.Outage != DeadAfter || got.Lost != int(DeadAfter/time.Millisecond) || got.Back != 0 {
		t.Errorf("dead path: %+v", got)
	}
	got = record("...xxxxx....xx").Loss(0, time.Unix(1000, 0))
	if got.Dead || got.Outage != 5*time.Millisecond || got.Lost != 7 {
		t.Errorf("short run at the end: %+v", got)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var xs []time.Duration
	for i := 20; i >= 1; i-- {
		xs = append(xs, time.Duration(i)*time.Second)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 10 * time.Second}, {95, 19 * time.Second}, {100, 20 * time.Second}, {1, time.Second}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("p%v of 1..20 s = %v, want %v", c.p, got, c.want)
		}
	}
	// A bring-up that never converged is slower than any that did.
	if got := Percentile([]time.Duration{time.Second, never, 2 * time.Second}, 95); got != never {
		t.Errorf("p95 with one non-converged run = %v, want never", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
}

func report() StressReport {
	start := time.Unix(2000, 0)
	return StressReport{
		Timeout: time.Minute,
		BringUps: []BringUp{
			{Run: 1, Converged: true, Took: 8200 * time.Millisecond},
			{Run: 2, Converged: true, Took: 21 * time.Second},
			{Run: 3, Converged: true, Took: 9 * time.Second},
		},
		Events: []Event{
			{Name: "flap DCI 1s", Start: start, Up: start.Add(time.Second), Flows: []FlowLoss{
				{"red1->green2", Loss{Sent: 15000, Lost: 1003, Outage: 1003 * time.Millisecond, Back: 2 * time.Millisecond, OutFrom: start}},
				{"green2->red1", Loss{Sent: 15000}},
			}},
			{Name: "flap DCI 15s", Start: start, Up: start.Add(15 * time.Second), Flows: []FlowLoss{
				{"red1->green2", Loss{Sent: 60000, Lost: 19000, Outage: 19 * time.Second, Back: 4 * time.Second, OutFrom: start}},
				{"green2->red1", Loss{Sent: 60000, Lost: 45000, Outage: 45 * time.Second, Dead: true, OutFrom: start}},
				{"red1->green2 (IPv6)", Loss{Sent: 60000, Lost: 15713, Outage: 15 * time.Second, Stray: 713, Back: 150 * time.Millisecond, OutFrom: start}},
			}},
		},
	}
}

// TestFailuresStrict: by default only non-convergence and dead paths fail;
// -strict adds the missed targets.
func TestFailuresStrict(t *testing.T) {
	r := report()
	want := []string{"flap DCI 15s: green2->red1 stayed dead"}
	if diff := cmp.Diff(want, r.Failures(false)); diff != "" {
		t.Errorf("Failures(false) (-want +got):\n%s", diff)
	}
	want = append(want, "slowest bring-up 21.00 s, over the target of 15s",
		"flap DCI 15s: red1->green2 back after 4000 ms, over the target of 3s",
		"flap DCI 15s: red1->green2 (IPv6) lost 713 outside its outage, over the target of 10")
	if diff := cmp.Diff(want, r.Failures(true)); diff != "" {
		t.Errorf("Failures(true) (-want +got):\n%s", diff)
	}

	r.Events = r.Events[:1]
	r.BringUps[1] = BringUp{Run: 2, Err: "not converged"}
	want = []string{"1 of 3 bring-ups did not converge within 1m0s"}
	if diff := cmp.Diff(want, r.Failures(false)); diff != "" {
		t.Errorf("non-convergence (-want +got):\n%s", diff)
	}
}

func TestSummary(t *testing.T) {
	r := report()
	r.BringUps[1] = BringUp{Run: 2, Err: "not converged"}
	got := r.Summary(false)
	for _, want := range []string{
		"bring-ups: 3, converged 2/3; p50 9.00 s, p95 >1m0s, max >1m0s",
		"target: every bring-up converges, the slowest within 15s: MISSED",
		"flap DCI 1s   red1->green2         1003 ms   1003/15000   0           +2 ms",
		"flap DCI 15s  green2->red1         45000 ms  45000/60000  0           stayed dead",
		"flap DCI 15s  red1->green2 (IPv6)  15000 ms  15713/60000  713         +150 ms",
		"target: every flow back within 3s of a flap's end or a restart, losing at most 10 outside its outage: MISSED",
		"FAIL: 1 of 3 bring-ups did not converge within 1m0s; flap DCI 15s: green2->red1 stayed dead",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}

	ok := report()
	ok.BringUps[1].Took = 10 * time.Second
	ok.Events = ok.Events[:1]
	got = ok.Summary(true)
	for _, want := range []string{"slowest within 15s: met", "outside its outage: met", "PASS (strict"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}

	// Back in time, but lost again after: the target is missed.
	stray := ok
	stray.Events = []Event{ok.Events[0]}
	stray.Events[0].Flows = slices.Clone(ok.Events[0].Flows)
	stray.Events[0].Flows[0].Lost += 11
	stray.Events[0].Flows[0].Stray = 11
	if got = stray.Summary(true); !strings.Contains(got, "outside its outage: MISSED") || !strings.Contains(got, "FAIL: flap DCI 1s: red1->green2 lost 11 outside its outage") {
		t.Errorf("a flow that lost 11 outside its outage:\n%s", got)
	}
	if line := stray.Events[0].Line(); !strings.Contains(line, "lost 1014 of 15000, back after +2 ms (11 of them outside the outage)") {
		t.Errorf("its event line: %s", line)
	}
}

func TestLines(t *testing.T) {
	r := report()
	if got, want := r.BringUps[0].Line(20, time.Minute), "bring-up  1/20  converged in 8.20 s"; got != want {
		t.Errorf("bring-up line %q, want %q", got, want)
	}
	if got, want := (BringUp{Run: 4, Logs: "/x/bringup-04"}).Line(20, time.Minute), "bring-up  4/20  NOT CONVERGED within 1m0s  (logs: /x/bringup-04)"; got != want {
		t.Errorf("failed bring-up line %q, want %q", got, want)
	}
	want := "event flap DCI 1s            red1->green2: outage 1003 ms from +0 ms, lost 1003 of 15000, back after +2 ms | green2->red1: no loss (15000 sent)"
	if got := r.Events[0].Line(); got != want {
		t.Errorf("event line\n%q, want\n%q", got, want)
	}
	if got := r.Events[1].Line(); !strings.Contains(got, "green2->red1: PATH STAYED DEAD (nothing for the last 45s; lost 45000 of 60000)") {
		t.Errorf("dead event line %q", got)
	}
}

// TestSessionsSince: agents that give a peer's last state change have it
// read; those that do not (or give the zero time) leave it unknown.
func TestSessionsSince(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct{ name, json, want string }{
		{"with since", `{"peers":[{"neighbor":"swp3","address":"fe80::1%swp3","remote-as":65210,"state":"active","since":"2026-12-01T09:59:18.5Z","failures":3},
			{"neighbor":"swp1","address":"fe80::2%swp1","remote-as":65199,"state":"established","since":"2026-12-01T09:59:50Z"}]}`,
			"  borderleaf01   1 of 2 established\n      swp3     fe80::1%swp3                     AS 65210  active       since 41.5s ago, 3 failed attempts\n"},
		{"without since", `{"peers":[{"neighbor":"swp3","address":"fe80::1%swp3","remote-as":65210,"state":"idle","uptime":"never"}]}`,
			"  borderleaf01   0 of 1 established\n      swp3     fe80::1%swp3                     AS 65210  idle         since unknown\n"},
		{"zero since", `{"peers":[{"neighbor":"swp3","address":"fe80::1%swp3","remote-as":0,"state":"connect","since":"0001-01-01T00:00:00Z","failures":1}]}`,
			"  borderleaf01   0 of 1 established\n      swp3     fe80::1%swp3                     AS -      connect      since unknown, 1 failed attempt\n"},
	} {
		var s summaryJSON
		if err := json.Unmarshal([]byte(c.json), &s); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := FormatSessions([]SwitchSessions{{Node: "borderleaf01", Sessions: s.sessions()}}, now)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	got := FormatSessions([]SwitchSessions{{Node: "leaf02", Err: "xleafd not running (pid 42 exited)"}}, now)
	if want := "  leaf02         xleafd not running (pid 42 exited)\n"; got != want {
		t.Errorf("agent not running: %q, want %q", got, want)
	}
}

func TestFRRSessions(t *testing.T) {
	now := time.Unix(5000, 0)
	got, err := frrSessions([]byte(`{"ipv4Unicast":{"peers":{"swp1":{"remoteAs":65199,"state":"Established","peerUptimeMsec":12000}}},
		"l2VpnEvpn":{"peers":{"swp1":{"remoteAs":65199,"state":"Established","peerUptimeMsec":12000}}}}`), now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Session{{Neighbor: "swp1", AS: 65199, State: "established", Since: now.Add(-12 * time.Second)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frrSessions (-want +got):\n%s", diff)
	}
}

// TestRotateLogsKeepsTheLastRun: Up moves the last run's logs aside, never
// deletes them; a second Up with nothing new keeps previous/ as it was.
func TestRotateLogsKeepsTheLastRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := rotateLogs(dir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "spine1.log"), []byte("run 1"), 0o644)
	if err := rotateLogs(dir); err != nil {
		t.Fatal(err)
	}
	if err := rotateLogs(dir); err != nil { // an Up that failed before starting anything
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "previous", "spine1.log")); err != nil || string(b) != "run 1" {
		t.Errorf("previous/spine1.log: %q %v, want run 1's", b, err)
	}
	os.WriteFile(filepath.Join(dir, "spine1.log"), []byte("run 2"), 0o644)
	if err := rotateLogs(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "previous", "spine1.log")); string(b) != "run 2" {
		t.Errorf("previous/spine1.log: %q, want run 2's", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "spine1.log")); err == nil {
		t.Error("spine1.log still in place after rotation")
	}
}
