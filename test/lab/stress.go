package lab

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets a stress run is held to: every bring-up converges within
// TargetConverge of the agents' start, a flow across the DCI leak is back
// within TargetBack of a flapped link coming up or a restarted agent
// starting, and loses no more than TargetStray datagrams outside its
// longest outage (a flow that comes back and goes again, as one did when
// a session's re-add dropped the routes graceful restart kept, loses more).
const (
	TargetConverge = 15 * time.Second
	TargetBack     = 3 * time.Second
	TargetStray    = 10
)

// DCI is borderleaf01's end of the link between the sites.
var DCI = Port{"borderleaf01", "swp3"}

// ProbeFlows cross the DCI leak both ways, over IPv4 and IPv6: RED site 1
// to GREEN site 2 leaks at borderleaf04, the way back at borderleaf01. Each
// has its own UDP port.
var ProbeFlows = []struct {
	From, To string
	Port     int
	V6       bool
}{
	{"red1", "green2", 47001, false},
	{"green2", "red1", 47002, false},
	{"red1", "green2", 47003, true},
	{"green2", "red1", 47004, true},
}

// StressOptions says what Stress does.
type StressOptions struct {
	Runs    int             // bring-ups from nothing
	Timeout time.Duration   // for a bring-up to converge, from the agents' start
	Rate    int             // probe datagrams a second, each way
	Flaps   []time.Duration // how long the DCI link stays down, one event each
	Restart bool            // also restart borderleaf01's agent
	Recover time.Duration   // how long a flow may take to come back after an event
	Watch   time.Duration   // how long a flow that came back is watched for another outage
	KeepDir string          // failed and slow runs' logs go in directories under it
	Out     io.Writer       // a line per bring-up and per event, as they end
}

// BringUp is one lab bring-up.
type BringUp struct {
	Run       int
	Converged bool
	Took      time.Duration // the agents' start to the guide's tables and their IPv6 twins on both border leafs
	Err       string        // why it did not converge
	Logs      string        // where its logs were kept, if they were
}

// FlowLoss is what one probe flow lost around an event.
type FlowLoss struct {
	Flow string // "red1->green2"
	Loss
}

// Event is one chaos event and what the flows did.
type Event struct {
	Name  string
	Start time.Time // the link went down, the agent was stopped
	Up    time.Time // the link came up, the agent was started again
	Flows []FlowLoss
	Err   string // the event could not be run
	Logs  string
}

// StressReport is what a stress run found.
type StressReport struct {
	Timeout       time.Duration
	BringUps      []BringUp
	Events        []Event
	EventsSkipped string // why no event ran
	Interrupted   bool
	KeepDir       string
}

// Stress brings the lab up from nothing o.Runs times, timing each to
// convergence, then runs the chaos events on the last one with the probe
// flows going, printing each figure as it comes. The lab stays up.
func (l *Lab) Stress(ctx context.Context, o StressOptions) StressReport {
	r := StressReport{Timeout: o.Timeout, KeepDir: o.KeepDir}
	for i := 1; i <= o.Runs; i++ {
		b := l.bringUp(ctx, i, o)
		if ctx.Err() != nil {
			r.Interrupted = true
			return r
		}
		r.BringUps = append(r.BringUps, b)
		fmt.Fprintln(o.Out, b.Line(o.Runs, o.Timeout))
		if b.Err != "" {
			fmt.Fprint(o.Out, indent(b.Err, "    "))
		}
	}
	if len(r.BringUps) > 0 && !r.BringUps[len(r.BringUps)-1].Converged {
		fmt.Fprintln(o.Out, "the last bring-up did not converge; the events need a converged lab: one more bring-up, not counted")
		b := l.bringUp(ctx, 0, o)
		if ctx.Err() != nil {
			r.Interrupted = true
			return r
		}
		fmt.Fprintln(o.Out, b.Line(o.Runs, o.Timeout))
		if !b.Converged {
			fmt.Fprint(o.Out, indent(b.Err, "    "))
			r.EventsSkipped = "no converged lab to run them on"
			return r
		}
	}
	for _, ev := range l.events(o) {
		e := l.event(ctx, ev, o)
		if ctx.Err() != nil {
			r.Interrupted = true
			return r
		}
		r.Events = append(r.Events, e)
		fmt.Fprintln(o.Out, e.Line())
	}
	return r
}

func (l *Lab) bringUp(ctx context.Context, run int, o StressOptions) BringUp {
	b := BringUp{Run: run}
	if err := l.Up(ctx); err != nil {
		b.Err = fmt.Sprintf("lab up: %v\n", err)
	} else {
		at, err := l.WaitConverged(ctx, o.Timeout-time.Since(l.AgentsStarted()))
		if err != nil {
			b.Err = err.Error()
		} else {
			b.Converged, b.Took = true, at.Sub(l.AgentsStarted())
		}
	}
	if ctx.Err() == nil && (!b.Converged || b.Took > TargetConverge) {
		why := b.Err
		if b.Converged {
			why = fmt.Sprintf("converged in %v, over the target of %v\n", b.Took.Round(10*time.Millisecond), TargetConverge)
		}
		b.Logs = l.keepLogs(o.KeepDir, fmt.Sprintf("bringup-%02d", run), why)
	}
	return b
}

// chaos is an event: do breaks something and mends it, returning when it
// started mending.
type chaos struct {
	name string
	do   func(ctx context.Context) (up time.Time, err error)
}

func (l *Lab) events(o StressOptions) []chaos {
	var evs []chaos
	for _, d := range o.Flaps {
		evs = append(evs, chaos{fmt.Sprintf("flap DCI %v", d), func(ctx context.Context) (time.Time, error) {
			if err := run("ip", "-n", l.ns(DCI.Node), "link", "set", DCI.If, "down"); err != nil {
				return time.Now(), err
			}
			// Up again whatever happens: a lab left with its DCI down
			// would fail everything after.
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			up := time.Now()
			return up, run("ip", "-n", l.ns(DCI.Node), "link", "set", DCI.If, "up")
		}})
	}
	if o.Restart {
		evs = append(evs, chaos{"restart " + DCI.Node, func(context.Context) (time.Time, error) {
			if err := l.Stop(DCI.Node); err != nil {
				return time.Now(), err
			}
			up := time.Now()
			return up, l.Restart(DCI.Node)
		}})
	}
	return evs
}

// event runs one chaos event with the probe flows going: they must be
// clean for a second before it; after it, each must deliver again within
// o.Recover, then is watched for o.Watch, and must be delivering at the
// end (again within o.Recover).
func (l *Lab) event(ctx context.Context, ev chaos, o StressOptions) Event {
	e := Event{Name: ev.name}
	fail := func(why string) Event {
		e.Err = why
		e.Logs = l.keepLogs(o.KeepDir, "event-"+slug(ev.name), why+"\n")
		return e
	}
	if _, err := l.WaitConverged(ctx, o.Recover); err != nil {
		return fail("the lab did not settle before the event: " + err.Error())
	}
	var probes []*Probe
	defer func() {
		for _, p := range probes {
			if p != nil {
				p.Stop()
			}
		}
	}()
	for _, f := range ProbeFlows {
		p, err := l.StartProbe(f.From, f.To, f.Port, o.Rate, f.V6)
		if err != nil {
			return fail(err.Error())
		}
		probes = append(probes, p)
	}
	all := func(cond func(p *Probe) bool) func() bool {
		return func() bool {
			for _, p := range probes {
				if !cond(p) {
					return false
				}
			}
			return true
		}
	}
	if !waitUntil(ctx, o.Recover, all(func(p *Probe) bool { return p.Clean(time.Second) })) {
		return fail(fmt.Sprintf("the flows were not clean for a second within %v before the event", o.Recover))
	}
	var from []int
	for _, p := range probes {
		from = append(from, p.Next())
	}
	e.Start = time.Now()
	up, err := ev.do(ctx)
	e.Up = up
	if err != nil {
		return fail(err.Error())
	}
	// Back: a datagram sent after the event arrived, each way. Then watch
	// for an outage that comes later (a hold timer, the restart's grace
	// period), and end only with both delivering.
	if waitUntil(ctx, o.Recover, all(func(p *Probe) bool { return p.NewestSent().After(up) })) {
		waitUntil(ctx, o.Watch, func() bool { return false })
		waitUntil(ctx, o.Recover, all(func(p *Probe) bool { return time.Since(p.NewestSent()) < 500*time.Millisecond }))
	}
	for i, p := range probes {
		rec := p.Stop()
		probes[i] = nil
		name := p.From + "->" + p.To
		if p.V6 {
			name += " (IPv6)"
		}
		e.Flows = append(e.Flows, FlowLoss{Flow: name, Loss: rec.Loss(from[i], up)})
	}
	if e.dead() || e.slow() {
		why := e.Line() + "\n\nBGP sessions not established:\n" + FormatSessions(l.Sessions(), time.Now())
		e.Logs = l.keepLogs(o.KeepDir, "event-"+slug(ev.name), why)
	}
	return e
}

func (e Event) dead() bool {
	return slices.ContainsFunc(e.Flows, func(f FlowLoss) bool { return f.Dead })
}

func (e Event) slow() bool {
	return slices.ContainsFunc(e.Flows, func(f FlowLoss) bool { return f.Back > TargetBack || f.Stray > TargetStray })
}

// waitUntil polls cond every 50 ms for up to d; false on timeout or when
// ctx ends.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// keepLogs copies the agents' logs as they are now into dir/name, with
// why.txt saying what went wrong; it returns the directory, or "" and a
// note in why when it could not.
func (l *Lab) keepLogs(dir, name, why string) string {
	if dir == "" {
		return ""
	}
	dst := filepath.Join(dir, name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return ""
	}
	entries, _ := os.ReadDir(l.LogDir())
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(l.LogDir(), e.Name())); err == nil {
			os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
	}
	os.WriteFile(filepath.Join(dst, "why.txt"), []byte(why), 0o644)
	return dst
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}

// never is a bring-up that did not converge, in a percentile.
const never = time.Duration(math.MaxInt64)

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100): the
// smallest value at least p% of them are at or under.
func Percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// secs prints a convergence time; one that never came as more than the
// timeout.
func secs(d, timeout time.Duration) string {
	if d == never {
		return ">" + timeout.String()
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func signedMs(d time.Duration) string { return fmt.Sprintf("%+d ms", d.Milliseconds()) }

// Line is a bring-up's line: "bring-up  3/20  converged in 12.34 s".
func (b BringUp) Line(runs int, timeout time.Duration) string {
	run := fmt.Sprintf("%2d/%d", b.Run, runs)
	if b.Run == 0 {
		run = "extra"
	}
	s := fmt.Sprintf("bring-up %s  ", run)
	if b.Converged {
		s += "converged in " + secs(b.Took, timeout)
	} else {
		s += fmt.Sprintf("NOT CONVERGED within %v", timeout)
	}
	if b.Logs != "" {
		s += "  (logs: " + b.Logs + ")"
	}
	return s
}

// Line is an event's line: each flow's outage, loss, and when it was back.
func (e Event) Line() string {
	s := fmt.Sprintf("event %-22s", e.Name)
	if e.Err != "" {
		s += " NOT RUN: " + e.Err
	}
	for i, f := range e.Flows {
		if i > 0 {
			s += " |"
		}
		s += " " + f.Flow + ": "
		switch {
		case f.Dead:
			s += fmt.Sprintf("PATH STAYED DEAD (nothing for the last %v; lost %d of %d)", f.Outage.Round(100*time.Millisecond), f.Lost, f.Sent)
		case f.Lost == 0:
			s += fmt.Sprintf("no loss (%d sent)", f.Sent)
		default:
			s += fmt.Sprintf("outage %s from %s, lost %d of %d, back after %s",
				ms(f.Outage), signedMs(f.OutFrom.Sub(e.Start)), f.Lost, f.Sent, signedMs(f.Back))
			if f.Stray > 0 {
				s += fmt.Sprintf(" (%d of them outside the outage)", f.Stray)
			}
		}
	}
	if e.Logs != "" {
		s += "  (logs: " + e.Logs + ")"
	}
	return s
}

// converged is how many bring-ups converged; times are their convergence
// times, those that did not as never.
func (r StressReport) converged() (n int, times []time.Duration) {
	for _, b := range r.BringUps {
		if b.Converged {
			n++
			times = append(times, b.Took)
		} else {
			times = append(times, never)
		}
	}
	return n, times
}

// ConvergeTargetMet: every bring-up converged, the slowest within
// TargetConverge.
func (r StressReport) ConvergeTargetMet() bool {
	n, times := r.converged()
	return n == len(r.BringUps) && n > 0 && Percentile(times, 100) <= TargetConverge
}

// BackTargetMet: every event ran, and every flow was back within
// TargetBack and lost at most TargetStray outside its outage.
func (r StressReport) BackTargetMet() bool {
	if r.EventsSkipped != "" || len(r.Events) == 0 {
		return false
	}
	for _, e := range r.Events {
		if e.Err != "" || e.dead() || e.slow() {
			return false
		}
	}
	return true
}

// Failures are why the run fails: bring-ups that did not converge, paths
// that stayed dead, events that could not run; with strict, also missed
// targets.
func (r StressReport) Failures(strict bool) []string {
	var out []string
	if r.Interrupted {
		out = append(out, "interrupted")
	}
	if n, _ := r.converged(); n < len(r.BringUps) {
		out = append(out, fmt.Sprintf("%d of %d bring-ups did not converge within %v", len(r.BringUps)-n, len(r.BringUps), r.Timeout))
	}
	if r.EventsSkipped != "" {
		out = append(out, "events not run: "+r.EventsSkipped)
	}
	for _, e := range r.Events {
		if e.Err != "" {
			out = append(out, fmt.Sprintf("%s not run: %s", e.Name, e.Err))
		}
		for _, f := range e.Flows {
			if f.Dead {
				out = append(out, fmt.Sprintf("%s: %s stayed dead", e.Name, f.Flow))
			}
		}
	}
	if strict {
		if n, times := r.converged(); n == len(r.BringUps) && n > 0 && Percentile(times, 100) > TargetConverge {
			out = append(out, fmt.Sprintf("slowest bring-up %s, over the target of %v", secs(Percentile(times, 100), r.Timeout), TargetConverge))
		}
		for _, e := range r.Events {
			for _, f := range e.Flows {
				if !f.Dead && f.Back > TargetBack {
					out = append(out, fmt.Sprintf("%s: %s back after %s, over the target of %v", e.Name, f.Flow, ms(f.Back), TargetBack))
				}
				if !f.Dead && f.Stray > TargetStray {
					out = append(out, fmt.Sprintf("%s: %s lost %d outside its outage, over the target of %d", e.Name, f.Flow, f.Stray, TargetStray))
				}
			}
		}
	}
	return out
}

// Summary is the report's end: bring-up percentiles, the events' figures
// in a table, each target met or missed, and the verdict.
func (r StressReport) Summary(strict bool) string {
	var b strings.Builder
	n, times := r.converged()
	fmt.Fprintf(&b, "bring-ups: %d, converged %d/%d", len(r.BringUps), n, len(r.BringUps))
	if len(times) > 0 {
		fmt.Fprintf(&b, "; p50 %s, p95 %s, max %s", secs(Percentile(times, 50), r.Timeout),
			secs(Percentile(times, 95), r.Timeout), secs(Percentile(times, 100), r.Timeout))
	}
	fmt.Fprintln(&b, "  (from the agents' start to the guide's tables and their IPv6 twins on both border leafs)")
	fmt.Fprintf(&b, "target: every bring-up converges, the slowest within %v: %s\n", TargetConverge, metText(r.ConvergeTargetMet()))

	if r.EventsSkipped != "" {
		fmt.Fprintf(&b, "events: none run (%s)\n", r.EventsSkipped)
	} else if len(r.Events) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "event\tflow\toutage\tlost\toutside it\tback after")
		for _, e := range r.Events {
			if e.Err != "" {
				fmt.Fprintf(tw, "%s\t-\tnot run\t\t\t\n", e.Name)
			}
			for _, f := range e.Flows {
				back := signedMs(f.Back)
				if f.Dead {
					back = "stayed dead"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\n", e.Name, f.Flow, ms(f.Outage), f.Lost, f.Sent, f.Stray, back)
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(&b, "target: every flow back within %v of a flap's end or a restart, losing at most %d outside its outage: %s\n",
		TargetBack, TargetStray, metText(r.BackTargetMet()))
	if r.KeepDir != "" {
		if _, err := os.Stat(r.KeepDir); err == nil {
			fmt.Fprintf(&b, "logs of failed and slow runs: %s\n", r.KeepDir)
		}
	}
	if f := r.Failures(strict); len(f) > 0 {
		fmt.Fprintf(&b, "FAIL: %s\n", strings.Join(f, "; "))
	} else {
		mode := "non-convergence and dead paths fail; -strict makes missed targets fail too"
		if strict {
			mode = "strict: missed targets fail too"
		}
		fmt.Fprintf(&b, "PASS (%s)\n", mode)
	}
	return b.String()
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
