package lab

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Session is one BGP session of a switch, as its `show bgp summary` has it.
type Session struct {
	Neighbor string // the port of an unnumbered session, else the address
	Address  string
	AS       uint32
	State    string    // idle, connect, active, opensent, openconfirm, established
	Since    time.Time // the last state change; zero when the agent does not say
	Failures int       // failed attempts since it was last up for a while, when the agent says
}

// SwitchSessions is a switch's sessions, or why it has none to show.
type SwitchSessions struct {
	Node     string
	Sessions []Session
	Err      string // its agent is not running, or does not answer
}

// summaryJSON is the part of xleafctl's `-o json show bgp summary`
// (show.Summary) read here. Since is decoded by hand: agents before the
// field existed leave it out.
type summaryJSON struct {
	Peers []struct {
		Neighbor string `json:"neighbor"`
		Address  string `json:"address"`
		AS       uint32 `json:"remote-as"`
		State    string `json:"state"`
		Since    string `json:"since"`
		Failures int    `json:"failures"`
	} `json:"peers"`
}

func (s summaryJSON) sessions() []Session {
	var out []Session
	for _, p := range s.Peers {
		ses := Session{Neighbor: p.Neighbor, Address: p.Address, AS: p.AS, State: p.State, Failures: p.Failures}
		if t, err := time.Parse(time.RFC3339Nano, p.Since); err == nil && t.Year() > 1 {
			ses.Since = t
		}
		out = append(out, ses)
	}
	return out
}

// Sessions asks every switch's agent (and FRR's leaf, when the lab has
// it) for its BGP sessions.
func (l *Lab) Sessions() []SwitchSessions {
	var out []SwitchSessions
	for _, sw := range Switches {
		ss := SwitchSessions{Node: sw.Name}
		if why := l.notRunning(sw.Name); why != "" {
			ss.Err = why
		} else {
			var sum summaryJSON
			if err := l.Ctl(sw.Name, &sum, "show", "bgp", "summary"); err != nil {
				ss.Err = "xleafd not answering: " + err.Error()
			} else {
				ss.Sessions = sum.sessions()
			}
		}
		out = append(out, ss)
	}
	if l.FRR {
		ss := SwitchSessions{Node: FRRLeaf + " (FRR)"}
		text, err := l.Vtysh("show bgp summary json")
		if err == nil {
			ss.Sessions, err = frrSessions([]byte(text), time.Now())
		} else {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(text))
		}
		if err != nil {
			ss.Err = "bgpd not answering: " + err.Error()
		}
		out = append(out, ss)
	}
	return out
}

// notRunning says why a switch's xleafd is not running, or "".
func (l *Lab) notRunning(node string) string {
	b, err := os.ReadFile(filepath.Join(l.runDir(), node+".pid"))
	if err != nil {
		return "xleafd not running (no pid file: stopped, or never started)"
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if processAlive(pid) {
		return ""
	}
	why := fmt.Sprintf("xleafd not running (pid %d exited)", pid)
	if log, err := os.ReadFile(l.LogFile(node)); err == nil {
		if last := strings.TrimSpace(tailLines(string(log), 1)); last != "" {
			why += "; its log ends: " + last
		}
	}
	return why
}

// processAlive says whether a process runs. A child of ours that exited
// is reaped here: a zombie still takes signals.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	var ws syscall.WaitStatus
	if got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// frrSessions reads FRR's `show bgp summary json`: a summary per address
// family, each with its peers by name; a peer is listed once.
func frrSessions(b []byte, now time.Time) ([]Session, error) {
	var afs map[string]struct {
		Peers map[string]struct {
			RemoteAS   uint32 `json:"remoteAs"`
			State      string `json:"state"`
			UptimeMsec int64  `json:"peerUptimeMsec"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(b, &afs); err != nil {
		return nil, fmt.Errorf("FRR's bgp summary: %w", err)
	}
	seen := map[string]bool{}
	var out []Session
	for _, af := range slices.Sorted(maps.Keys(afs)) {
		for _, name := range slices.Sorted(maps.Keys(afs[af].Peers)) {
			if seen[name] {
				continue
			}
			seen[name] = true
			p := afs[af].Peers[name]
			s := Session{Neighbor: name, AS: p.RemoteAS, State: strings.ToLower(p.State)}
			if p.UptimeMsec > 0 {
				s.Since = now.Add(-time.Duration(p.UptimeMsec) * time.Millisecond)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// FormatSessions lists, switch by switch, how many sessions are
// established and each one that is not: its port, address, AS, state and
// since when; and the agents that are not running or not answering.
func FormatSessions(ss []SwitchSessions, now time.Time) string {
	var b strings.Builder
	for _, s := range ss {
		if s.Err != "" {
			fmt.Fprintf(&b, "  %-14s %s\n", s.Node, s.Err)
			continue
		}
		up := 0
		for _, p := range s.Sessions {
			if p.State == "established" {
				up++
			}
		}
		fmt.Fprintf(&b, "  %-14s %d of %d established\n", s.Node, up, len(s.Sessions))
		for _, p := range s.Sessions {
			if p.State == "established" {
				continue
			}
			addr := p.Address
			if addr == "" || addr == p.Neighbor {
				addr = "-"
			}
			since := "since unknown"
			if !p.Since.IsZero() {
				since = "since " + now.Sub(p.Since).Round(100*time.Millisecond).String() + " ago"
			}
			switch {
			case p.Failures == 1:
				since += ", 1 failed attempt"
			case p.Failures > 1:
				since += fmt.Sprintf(", %d failed attempts", p.Failures)
			}
			as := "-" // unnumbered and external: known once its OPEN came
			if p.AS != 0 {
				as = strconv.FormatUint(uint64(p.AS), 10)
			}
			fmt.Fprintf(&b, "      %-8s %-32s AS %-6s %-12s %s\n", p.Neighbor, addr, as, p.State, since)
		}
	}
	return b.String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
