// Command xleaflab brings the guide's two-site fabric up in network
// namespaces (up), shows it converged and carrying traffic across the
// leaked VRFs, and leaves it up to explore; down removes it.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/xleaf/xleaf/test/lab"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: xleaflab up|down")
		os.Exit(2)
	}
	self, _ := os.Executable()
	l := &lab.Lab{Prefix: "xl-", Bin: filepath.Dir(self), FRR: lab.HaveFRR(), Log: func(f string, a ...any) { fmt.Printf(f+"\n", a...) }}
	if os.Args[1] == "down" {
		l.Down()
		fmt.Println("lab removed")
		return
	}
	if err := up(l); err != nil {
		fmt.Fprintln(os.Stderr, "xleaflab:", err)
		os.Exit(1)
	}
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
	fmt.Printf("   converged in %v\n", time.Since(start).Round(time.Second))
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
	fmt.Println("\n== traffic across every leak path (ping, 5 packets each)")
	results, err := l.Traffic(ctx)
	if err != nil {
		return err
	}
	if l.FRR {
		if err := l.ConvergeFRR(60 * time.Second); err != nil {
			fmt.Printf("   warning: %v; its flows follow anyway\n", err)
		}
		for _, f := range lab.FRRFlows {
			r, err := l.RunFlow(f)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	fmt.Print(lab.Summary(results))
	fmt.Printf("\nThe lab stays up. Explore:  sudo %s --socket %s show route vrf RED\n", filepath.Join(l.Bin, "xleafctl"), l.Socket("borderleaf01"))
	fmt.Println("Hosts: sudo ip netns exec xl-red1 ping 192.168.20.110    Remove: make lab-down")
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
