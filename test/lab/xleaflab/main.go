// Command xleaflab brings the guide's two-site fabric up in network
// namespaces (up), shows it converged and carrying traffic across the
// leaked VRFs, and leaves it up to explore; down removes it; stress brings
// it up again and again, then breaks it, and measures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xleaf/xleaf/test/lab"
)

const usage = `usage: xleaflab up|down
       xleaflab stress [-n runs] [-timeout d] [-rate pps] [-flaps d,d,...] [-restart=false]
                       [-recover d] [-watch d] [-strict] [-down] [-keep dir]`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	self, _ := os.Executable()
	l := &lab.Lab{Prefix: "xl-", Bin: filepath.Dir(self), FRR: lab.HaveFRR(), Log: func(f string, a ...any) { fmt.Printf(f+"\n", a...) }}
	switch {
	case os.Args[1] == "down" && len(os.Args) == 2:
		l.Down()
		fmt.Printf("lab removed; the agents' logs stay in %s\n", l.LogDir())
	case os.Args[1] == "up" && len(os.Args) == 2:
		if err := up(l); err != nil {
			fmt.Fprintln(os.Stderr, "xleaflab:", err)
			fmt.Fprintf(os.Stderr, "xleaflab: the agents' logs are in %s\n", l.LogDir())
			os.Exit(1)
		}
	case os.Args[1] == "stress":
		os.Exit(stress(l, os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

// stress runs lab.Stress and prints its summary; the exit code is 1 when
// it failed.
func stress(l *lab.Lab, args []string) int {
	fs := flag.NewFlagSet("stress", flag.ContinueOnError)
	var (
		runs    = fs.Int("n", 20, "bring-ups from nothing")
		timeout = fs.Duration("timeout", 60*time.Second, "a bring-up not converged this long after the agents' start failed")
		rate    = fs.Int("rate", 1000, "probe datagrams a second, each way")
		flaps   = fs.String("flaps", "1s,3s,15s", "how long the DCI link (borderleaf01 swp3) stays down, comma-separated; empty for none")
		restart = fs.Bool("restart", true, "restart borderleaf01's xleafd as an event")
		recover = fs.Duration("recover", 30*time.Second, "how long a flow may take to come back after an event before its path counts as dead")
		watch   = fs.Duration("watch", 12*time.Second, "how long a flow that came back is watched for a later outage (hold timer 9 s, grace 10 s)")
		strict  = fs.Bool("strict", false, "fail on missed targets too (converge within 15 s, back within 3 s), not only on non-convergence and dead paths")
		down    = fs.Bool("down", false, "remove the lab at the end (by default it stays up, as after xleaflab up)")
		keep    = fs.String("keep", "/var/tmp/xleaf-lab-stress", "failed and slow runs' logs go under <keep>/<start time>/")
	)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *runs < 1 || *rate < 1 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	o := lab.StressOptions{Runs: *runs, Timeout: *timeout, Rate: *rate, Restart: *restart, Recover: *recover, Watch: *watch,
		KeepDir: filepath.Join(*keep, time.Now().Format("20060102-150405")), Out: os.Stdout}
	for _, f := range strings.Split(*flaps, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "xleaflab stress: -flaps: %q is not a duration\n", f)
			return 2
		}
		o.Flaps = append(o.Flaps, d)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	frr := ""
	if l.FRR {
		frr = ", with FRR's leaf05"
	}
	fmt.Printf("== %d bring-ups of the lab (prefix %s%s), each from nothing: converged = both border leafs' RED and GREEN\n", o.Runs, l.Prefix, frr)
	fmt.Printf("   tables are the guide's and their IPv6 twins, timed from the agents' start, read every %v; more than %v is a failure\n", lab.ConvergePoll, o.Timeout)
	fmt.Printf("== then on the last: %d-pps UDP probes red1 -> green2 and green2 -> red1 across the DCI leak, through\n", o.Rate)
	fmt.Printf("   flaps of borderleaf01's swp3 (%v) and a restart of borderleaf01's xleafd: %v\n", o.Flaps, o.Restart)
	fmt.Printf("   logs of failed and slow runs go to %s; the agents' logs of the current run are in %s\n", o.KeepDir, l.LogDir())
	r := l.Stress(ctx, o)
	fmt.Println("\n== summary")
	fmt.Print(r.Summary(*strict))
	if *down {
		l.Down()
		fmt.Printf("lab removed (-down); the agents' logs stay in %s\n", l.LogDir())
	} else {
		fmt.Printf("The lab stays up (remove it: xleaflab down). Logs: %s\n", l.LogDir())
	}
	if len(r.Failures(*strict)) > 0 {
		return 1
	}
	return 0
}

func up(l *lab.Lab) error {
	ctx := context.Background()
	start := time.Now()
	fmt.Println("== building the two-site fabric: 8 switches running xleafd, 5 hosts")
	if l.FRR {
		fmt.Println("   and leaf05: FRR 8.4 with kernel VXLAN, in site 1, RED 192.168.5.0/24")
	}
	if err := l.Up(ctx); err != nil {
		return err
	}
	fmt.Println("== waiting for BGP: both border leafs' RED and GREEN tables must match the guide's")
	if err := l.Converge(ctx, 180*time.Second); err != nil {
		return err
	}
	fmt.Printf("   converged %v after the agents' start (%v with building the fabric)\n",
		time.Since(l.AgentsStarted()).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	for _, node := range []string{"borderleaf01", "borderleaf04"} {
		for _, vrf := range []string{"RED", "GREEN"} {
			for _, cmd := range [][]string{{"show", "vrf", vrf, "evpn", "bgp-info"}, {"show", "route", "vrf", vrf}, {"show", "bgp", "vrf", vrf}} {
				out, err := l.CtlText(node, cmd...)
				fmt.Printf("\n%s$ xleafctl %s\n%s", node, join(cmd), out)
				if err != nil {
					return err
				}
			}
		}
	}
	fmt.Println("\n== traffic across every leak path, IPv4 and IPv6 (ping, 5 packets each)")
	results, err := l.Traffic(ctx)
	if err != nil {
		return err
	}
	if l.FRR {
		if err := l.ConvergeFRR(60 * time.Second); err != nil {
			fmt.Printf("   warning: %v; its flows follow anyway\n", err)
		}
		for _, f := range append(lab.FRRFlows, lab.FRRFlows6...) {
			r, err := l.RunFlow(f)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	fmt.Print(lab.Summary(results))
	fmt.Println("\n== where they went: the border leafs' leak matrices (packets, all flows above)")
	for _, node := range []string{"borderleaf01", "borderleaf04"} {
		out, err := l.CtlText(node, "show", "vrf", "leak-matrix")
		fmt.Printf("\n%s$ xleafctl show vrf leak-matrix\n%s", node, out)
		if err != nil {
			return err
		}
	}
	fmt.Println("\n== what the data path does with one of them: the guide's leaked DCI flow at the border leaf that leaks it")
	out, err := l.CtlText(lab.ExplainDCI.Node, lab.ExplainDCI.Args...)
	fmt.Printf("\n%s$ xleafctl %s\n%s", lab.ExplainDCI.Node, join(lab.ExplainDCI.Args), out)
	if err != nil {
		return err
	}
	fmt.Println("\n== and the border leafs' data paths against their RIBs")
	for _, node := range []string{"borderleaf01", "borderleaf04"} {
		out, err := l.CtlText(node, "verify")
		fmt.Printf("\n%s$ xleafctl verify\n%s", node, out)
		if err != nil {
			return err
		}
	}
	fmt.Println("\n== traceroute across the DCI leak (xleaf's ICMP and ICMPv6 errors: every routed hop answers)")
	for _, want := range lab.Traces {
		tr, err := l.Traceroute(want.From, want.To)
		if err != nil {
			return err
		}
		fmt.Printf("%s$ traceroute -n %s\n%s", want.From, lab.HostAddr(want.To), tr.Output)
	}
	for _, want := range lab.Traces6 {
		tr, err := l.Traceroute6(want.From, want.To)
		if err != nil {
			return err
		}
		fmt.Printf("%s$ traceroute -6 -n %s\n%s", want.From, lab.HostAddr6(want.To), tr.Output)
	}
	for _, v6 := range []bool{false, true} {
		family := "IPv4"
		if v6 {
			family = "IPv6"
		}
		fmt.Printf("\n== path MTU discovery (%s): TCP red1 -> green2 with site 2's ports to green2 at %d bytes\n", family, lab.NarrowMTU)
		pm, err := l.PathMTU(v6)
		if err != nil {
			return err
		}
		fmt.Printf("   iperf3 3 s: %.0f bytes received, %d retransmits; red1 learned mtu %d towards green2\n", pm.Bytes, pm.Retransmits, pm.LearnedMTU)
	}
	fmt.Printf("\nThe lab stays up. Explore:  sudo %s --socket %s show route vrf RED\n", filepath.Join(l.Bin, "xleafctl"), l.Socket("borderleaf01"))
	fmt.Println("Hosts: sudo ip netns exec xl-red1 ping 192.168.20.110    Remove: make lab-down")
	fmt.Printf("The agents' logs: %s (the run before: previous/)\n", l.LogDir())
	return nil
}

func join(s []string) string {
	out := ""
	for i, w := range s {
		if i > 0 {
			out += " "
		}
		out += w
	}
	return out
}
