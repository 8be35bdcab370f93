package lab

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xleaf/xleaf/control/show"
)

// Route is one prefix of a VRF table reduced to what the guide and xleaf
// must agree on: next hops (sorted), the label when it is another VRF's,
// and blackholes. Timers and interface names aside.
type Route struct {
	Blackhole bool
	Via       []string
	Label     uint32
}

func (r Route) String() string {
	if r.Blackhole {
		return "blackhole"
	}
	s := "via " + strings.Join(r.Via, ",")
	if r.Label != 0 {
		s += fmt.Sprintf(" label %d", r.Label)
	}
	return s
}

// Table is a VRF's BGP routes by prefix.
type Table map[string]Route

// GuideTables are the border leafs' RED and GREEN tables as the guide
// prints them (configs/guide-routes.txt is the guide's text), keyed
// "borderleaf01/RED".
func GuideTables() (map[string]Table, error) {
	b, err := configs.ReadFile("configs/guide-routes.txt")
	if err != nil {
		return nil, err
	}
	var (
		prompt = regexp.MustCompile(`^cumulus@(\S+?):.*net show route vrf (\S+)`)
		first  = regexp.MustCompile(`^B>\* (\S+) \[\d+/\d+\] (.*)$`)
		more   = regexp.MustCompile(`^\s+\*\s+(via .*)$`)
		via    = regexp.MustCompile(`via (\S+?),`)
		label  = regexp.MustCompile(`label (\d+)`)
	)
	out := map[string]Table{}
	var cur Table
	var last string
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(string(b), "\u00a0", " ")))
	add := func(prefix, rest string) {
		r := cur[prefix]
		if strings.Contains(rest, "blackhole") {
			r.Blackhole = true
		}
		if m := via.FindStringSubmatch(rest); m != nil {
			r.Via = append(r.Via, m[1])
			slices.Sort(r.Via)
		}
		if m := label.FindStringSubmatch(rest); m != nil {
			fmt.Sscan(m[1], &r.Label)
		}
		cur[prefix] = r
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " ")
		if m := prompt.FindStringSubmatch(line); m != nil {
			cur = Table{}
			out[m[1]+"/"+m[2]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if m := first.FindStringSubmatch(line); m != nil {
			last = m[1]
			add(last, m[2])
		} else if m := more.FindStringSubmatch(line); m != nil && last != "" {
			add(last, m[1])
		}
	}
	return out, sc.Err()
}

// XleafTable is a switch's VRF table as xleafctl reports it, both
// families, reduced the same way (BGP routes only: the guide's tables show
// no local subnet on a border leaf). An IPv6 route's VTEP, IPv4-mapped
// (::ffff:10.10.10.1), is given as the IPv4 address it is.
func (l *Lab) XleafTable(node, vrf string) (Table, error) {
	var rt show.RouteTable
	if err := l.Ctl(node, &rt, "show", "route", "vrf", vrf); err != nil {
		return nil, err
	}
	t := Table{}
	for _, r := range append(rt.Routes, rt.Routes6...) {
		if r.Protocol != "bgp" {
			continue
		}
		route := Route{Blackhole: r.Blackhole}
		for _, nh := range r.Nexthops {
			route.Via = append(route.Via, strings.TrimPrefix(nh.Via, "::ffff:"))
			route.Label = nh.Label
		}
		slices.Sort(route.Via)
		t[r.Prefix] = route
	}
	return t, nil
}

// Diff compares two tables; "" when they agree.
func Diff(want, got Table) string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(want)) {
		w := want[p]
		g, ok := got[p]
		switch {
		case !ok:
			fmt.Fprintf(&b, "  missing %s %v\n", p, w)
		case g.String() != w.String():
			fmt.Fprintf(&b, "  %s: want %v, got %v\n", p, w, g)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			fmt.Fprintf(&b, "  extra %s %v\n", p, got[p])
		}
	}
	return b.String()
}

// ConvergePoll is how often Converge reads the border leafs' tables: it
// sets the resolution of a convergence time.
const ConvergePoll = 200 * time.Millisecond

// Converge waits until both border leafs' RED and GREEN tables are the
// guide's and their IPv6 twins (DualStackTables), the hosts announcing themselves in the background. On timeout
// it says what differs and why: every switch's BGP sessions that are not
// established, and the agents that are not running or not answering.
func (l *Lab) Converge(ctx context.Context, timeout time.Duration) error {
	_, err := l.WaitConverged(ctx, timeout)
	return err
}

// WaitConverged is Converge, returning when the tables were seen to match:
// the end of the first reading in which all four matched.
func (l *Lab) WaitConverged(ctx context.Context, timeout time.Duration) (time.Time, error) {
	want, err := DualStackTables()
	if err != nil {
		return time.Time{}, err
	}
	deadline := time.Now().Add(timeout)
	actx, cancel := context.WithCancel(ctx)
	var announcing sync.WaitGroup
	announcing.Go(func() {
		for {
			l.announce(actx)
			select {
			case <-actx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	})
	defer func() {
		cancel()
		announcing.Wait()
	}()
	for {
		next := time.Now().Add(ConvergePoll)
		// While it differs, the first table that does is enough.
		if l.tableDiff(want, true) == "" {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			diffs := l.tableDiff(want, false)
			if diffs == "" {
				return time.Now(), nil
			}
			return time.Time{}, fmt.Errorf("not converged to the guide's tables and their IPv6 twins after %v:\n%sBGP sessions not established:\n%s",
				timeout, diffs, FormatSessions(l.Sessions(), time.Now()))
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
}

// tableDiff compares the border leafs' tables with the guide's, in a fixed
// order; "" when all agree.
func (l *Lab) tableDiff(want map[string]Table, first bool) string {
	var diffs strings.Builder
	for _, key := range slices.Sorted(maps.Keys(want)) {
		node, vrf, _ := strings.Cut(key, "/")
		got, err := l.XleafTable(node, vrf)
		if err != nil {
			fmt.Fprintf(&diffs, "%s: %v\n", key, err)
		} else {
			if l.FRR {
				delete(got, FRRSubnet) // the guide has no FRR leaf
				delete(got, Twin6(FRRSubnet))
			}
			if d := Diff(want[key], got); d != "" {
				fmt.Fprintf(&diffs, "%s:\n%s", key, d)
			}
		}
		if first && diffs.Len() > 0 {
			break
		}
	}
	return diffs.String()
}
