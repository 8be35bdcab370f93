package lab

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Trace is a traceroute across the fabric: what a tenant sees of the
// routers on its path, which answer with xleaf's ICMP errors.
type Trace struct {
	From, To string
	Hops     []string // each hop's address, "*" when none answered, with traceroute's mark ("!N") if any
	Output   string
}

// Traces are the guide's DCI leak both ways, and BLUE, which nobody
// imports, with the hops each should show: every routed hop, the border
// leafs answering from their loopbacks (their VRFs have no ports).
var Traces = []struct {
	From, To string
	Want     []string
}{
	{"red1", "green2", []string{"192.168.1.1", "10.10.20.11", "192.168.20.1", "192.168.20.110"}},
	{"green2", "red1", []string{"192.168.20.1", "10.10.10.10", "192.168.1.1", "192.168.1.10"}},
	{"blue1", "red1", []string{"192.168.3.1 !N"}},
}

var hopLine = regexp.MustCompile(`^\s*(\d+)\s+(\S+)(?:\s+[\d.]+ ms)?(?:\s+(![A-Z]\S*))?`)

// Traceroute runs a UDP traceroute (one probe a hop, 1 s wait, at most 8
// hops) from one host to another.
func (l *Lab) Traceroute(from, to string) (Trace, error) { return l.traceroute(from, to, false) }

// Traceroute6 is Traceroute between the hosts' IPv6 addresses.
func (l *Lab) Traceroute6(from, to string) (Trace, error) { return l.traceroute(from, to, true) }

func (l *Lab) traceroute(from, to string, v6 bool) (Trace, error) {
	family, addr := "-4", HostAddr(to)
	if v6 {
		family, addr = "-6", HostAddr6(to)
	}
	out, err := l.Exec(from, "traceroute", family, "-n", "-q", "1", "-w", "1", "-m", "8", addr)
	t := Trace{From: from, To: to, Output: out}
	if err != nil {
		return t, fmt.Errorf("traceroute %s -> %s: %v\n%s", from, to, err, out)
	}
	for _, line := range strings.Split(out, "\n")[1:] {
		m := hopLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		hop := m[2]
		if m[3] != "" {
			hop += " " + m[3]
		}
		t.Hops = append(t.Hops, hop)
	}
	return t, nil
}

// PMTU is a TCP flow across a link narrower than the path: the sender
// must learn the narrow link's MTU from xleaf's fragmentation-needed.
type PMTU struct {
	Bytes       float64 // received
	Retransmits int
	LearnedMTU  int // in the sender's route cache towards the receiver; 0: none
	Output      string
}

// NarrowMTU is the host link's MTU in the PMTU run, under the 1500 of the
// hosts' own interfaces.
const NarrowMTU = 1400

// PathMTU runs a 3-second iperf3 from red1 to green2 (the guide's DCI
// leak) with site 2's leafs' ports to green2 narrowed to NarrowMTU, while
// green2 itself still announces a full-size MSS: every full segment is too
// big for the last hop, and the flow moves only if the sender learns the
// path's MTU (over IPv6, from xleaf's packet too big: no router fragments).
// The ports get their MTU back afterwards.
func (l *Lab) PathMTU(v6 bool) (PMTU, error) {
	family, to := "-4", HostAddr("green2")
	if v6 {
		family, to = "-6", HostAddr6("green2")
	}
	var r PMTU
	setMTU := func(mtu int) error {
		for _, leaf := range []string{"leaf03", "leaf04"} {
			if err := run("ip", "-n", l.ns(leaf), "link", "set", "swp20", "mtu", strconv.Itoa(mtu)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := setMTU(NarrowMTU); err != nil {
		return r, err
	}
	defer setMTU(1500)
	if out, err := l.Exec("red1", "ip", family, "route", "flush", "cache"); err != nil {
		return r, fmt.Errorf("flush red1's route cache: %v %s", err, out)
	}
	if out, err := l.Exec("green2", "iperf3", "-s", "-D", "-1", "-p", "5202"); err != nil {
		return r, fmt.Errorf("iperf3 server on green2: %v %s", err, out)
	}
	out, err := l.Exec("red1", "timeout", "20", "iperf3", family, "-c", to, "-p", "5202", "-t", "3", "-J")
	r.Output = out
	if err != nil {
		return r, fmt.Errorf("iperf3 red1 -> green2: %v", err)
	}
	var res struct {
		End struct {
			SumSent struct {
				Retransmits int
			} `json:"sum_sent"`
			SumReceived struct{ Bytes float64 } `json:"sum_received"`
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return r, fmt.Errorf("iperf3 output: %v", err)
	}
	r.Bytes, r.Retransmits = res.End.SumReceived.Bytes, res.End.SumSent.Retransmits
	route, err := l.Exec("red1", "ip", family, "route", "get", to)
	if err != nil {
		return r, fmt.Errorf("red1's route to green2: %v %s", err, route)
	}
	if m := regexp.MustCompile(`\bmtu (\d+)`).FindStringSubmatch(route); m != nil {
		r.LearnedMTU, _ = strconv.Atoi(m[1])
	}
	return r, nil
}
