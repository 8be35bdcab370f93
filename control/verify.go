package control

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/xleaf/xleaf/control/rib"
)

// The audit: does the data path forward as BGP says? Every VRF's table in
// the data path (its pinned LPM trie, the record the compiled FIB is built
// from) against the routes the RIB selected, as the RIB programs them; and
// its hosts against the agent's and the kernel's neighbour entries.
// xleafctl verify runs it on demand; the agent runs it every verifyInterval
// and exports the count of differences (xleaf_dataplane_differences).

// verifyInterval is how often the agent verifies by itself unless
// Options.VerifyEvery says otherwise.
var verifyInterval = time.Minute

// VerifyReport is what one audit found.
type VerifyReport struct {
	At          time.Time        `json:"at"`
	Took        time.Duration    `json:"took_ns"`
	VRFs        int              `json:"vrfs"`
	Routes      int              `json:"routes"` // the RIB's, compared
	Hosts       int              `json:"hosts"`  // the hosts part's, compared
	Differences []rib.Difference `json:"differences"`
}

// Verify audits the data path now. A difference counts only if a second
// look finds it too: the tables are read while routes keep changing, and
// one caught in flight would show once.
func (a *Agent) Verify() (VerifyReport, error) {
	r := VerifyReport{At: time.Now(), VRFs: len(a.pipeline.rib.Counts())}
	routeDiffs, nRoutes, err := confirmed(func() ([]rib.Difference, int, error) { return a.pipeline.rib.Verify(a.dp.EachRoute) })
	if err != nil {
		return r, err
	}
	// The hosts: the data path's against the agent's and the kernel's
	// neighbour entries.
	hostDiffs, nHosts, err := confirmed(a.hosts.audit)
	if err != nil {
		return r, err
	}
	r.Took, r.Routes, r.Hosts, r.Differences = time.Since(r.At), nRoutes, nHosts, append(routeDiffs, hostDiffs...)
	if r.Differences == nil {
		r.Differences = []rib.Difference{}
	}
	if old := a.verified.Swap(&r); old == nil || len(old.Differences) != len(r.Differences) {
		if len(r.Differences) > 0 {
			a.log.Warn("the data path differs from the RIB or the hosts (xleafctl verify lists how)", "differences", len(r.Differences),
				"first", fmt.Sprintf("%s %s %s", r.Differences[0].VRF, r.Differences[0].Prefix, r.Differences[0].Kind))
		} else if old != nil {
			a.log.Info("the data path agrees with the RIB and the hosts again", "routes", r.Routes, "hosts", r.Hosts)
		}
	}
	return r, nil
}

// confirmed runs an audit, and again if it found differences: only those
// both runs find are kept.
func confirmed(audit func() ([]rib.Difference, int, error)) ([]rib.Difference, int, error) {
	found, n, err := audit()
	if err != nil || len(found) == 0 {
		return found, n, err
	}
	again, _, err := audit()
	if err != nil {
		return nil, 0, err
	}
	// A set: a table load in flight can differ in many routes at once.
	twice := make(map[rib.Difference]bool, len(again))
	for _, d := range again {
		twice[d] = true
	}
	return slices.DeleteFunc(found, func(d rib.Difference) bool { return !twice[d] }), n, nil
}

// verifyShare bounds the periodic audit's cost: the next one starts no
// sooner than this many times the last one's duration after it ended (at
// most 1/20 of a core). A million routes take seconds to read back from
// the data path; every minute that would be a third of a core.
const verifyShare = 20

// verifyEvery runs Verify every verifyInterval (or Options.VerifyEvery),
// stretched by verifyShare when an audit takes long, until ctx ends; the
// returned function ends it and waits (nothing reads the data path after
// it).
func (a *Agent) verifyEvery(ctx context.Context) (stop func()) {
	every := verifyInterval
	if a.opts.VerifyEvery != 0 {
		every = a.opts.VerifyEvery
	}
	if every < 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait, stretched := every, false
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			r, err := a.Verify()
			if err != nil && ctx.Err() == nil {
				a.log.Warn("verify the data path", "err", err)
			}
			wait = max(every, verifyShare*r.Took)
			if long := wait > every; long != stretched {
				stretched = long
				if long {
					a.log.Info("the audit takes long: run less often", "took", r.Took.Round(time.Millisecond), "routes", r.Routes, "every", wait.Round(time.Second))
				} else {
					a.log.Info("the audit runs at its interval again", "every", every)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Text is xleafctl verify's output.
func (r VerifyReport) Text(w io.Writer) error {
	fmt.Fprintf(w, "Verified %d VRFs, %d routes of the RIB and %d hosts against the data path in %v: ", r.VRFs, r.Routes, r.Hosts,
		r.Took.Round(time.Microsecond))
	if len(r.Differences) == 0 {
		_, err := fmt.Fprintln(w, "no differences")
		return err
	}
	fmt.Fprintf(w, "%d differences\n\n", len(r.Differences))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VRF\tPrefix\tDifference\tWant\tData path")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, d := range r.Differences {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.VRF, d.Prefix, d.Kind, dash(d.Want), dash(d.Got))
	}
	return tw.Flush()
}
