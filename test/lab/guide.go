package lab

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
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

// XleafTable is a switch's VRF table as xleafctl reports it, reduced the
// same way (BGP routes only: the guide's tables show no local subnet on a
// border leaf).
func (l *Lab) XleafTable(node, vrf string) (Table, error) {
	var rt show.RouteTable
	if err := l.Ctl(node, &rt, "show", "route", "vrf", vrf); err != nil {
		return nil, err
	}
	t := Table{}
	for _, r := range rt.Routes {
		if r.Protocol != "bgp" {
			continue
		}
		route := Route{Blackhole: r.Blackhole}
		for _, nh := range r.Nexthops {
			route.Via = append(route.Via, nh.Via)
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
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			fmt.Fprintf(&b, "  missing %s %v\n", p, w)
		case g.String() != w.String():
			fmt.Fprintf(&b, "  %s: want %v, got %v\n", p, w, g)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			fmt.Fprintf(&b, "  extra %s %v\n", p, g)
		}
	}
	return b.String()
}

// Converge waits until both border leafs' RED and GREEN tables are the
// guide's, announcing the hosts as it goes; it returns the last difference
// on timeout.
func (l *Lab) Converge(ctx context.Context, timeout time.Duration) error {
	want, err := GuideTables()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		l.Announce()
		var diffs strings.Builder
		for key, w := range want {
			node, vrf, _ := strings.Cut(key, "/")
			got, err := l.XleafTable(node, vrf)
			if err != nil {
				fmt.Fprintf(&diffs, "%s: %v\n", key, err)
				continue
			}
			if l.FRR {
				delete(got, FRRSubnet) // the guide has no FRR leaf
			}
			if d := Diff(w, got); d != "" {
				fmt.Fprintf(&diffs, "%s:\n%s", key, d)
			}
		}
		if diffs.Len() == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not converged to the guide's tables after %v:\n%s", timeout, diffs.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
