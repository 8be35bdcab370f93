package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/xleaf/xleaf/control/show"
)

// Version is show version.
type Version struct {
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	PID     int       `json:"pid"`
}

// Args are a command's arguments, keyed by the upper-case word that stands
// for them in its pattern ("VRF" in "show route vrf VRF").
type Args map[string]string

// Command is one xleafctl command: what is typed, what xleafd does and how
// xleafctl prints the answer. xleafd and xleafctl share the row so that the
// two cannot disagree about a command.
type Command struct {
	Words string // the pattern; an upper-case word is an argument
	Help  string
	Run   func(ctx context.Context, a *Agent, args Args, reload Reloader) (any, error)
	Text  func(w io.Writer, data json.RawMessage) error
}

// Commands is every command; a new show is one row here.
var Commands = []Command{
	{
		Words: "show vrf VRF evpn bgp-info",
		Help:  "the VRF's VNI, VTEP, router MAC, RD and route targets",
		Run: func(_ context.Context, a *Agent, args Args, _ Reloader) (any, error) {
			return a.BGPInfo(args["VRF"])
		},
		Text: textOf(show.BGPInfo.Text),
	},
	{
		Words: "show route vrf VRF",
		Help:  "the VRF's selected routes, as the data path has them",
		Run: func(_ context.Context, a *Agent, args Args, _ Reloader) (any, error) {
			return a.RouteTable(args["VRF"])
		},
		// Routes carry when they were installed; their age is the reader's clock.
		Text: textOf(func(t show.RouteTable, w io.Writer) error { return t.Text(w, time.Now()) }),
	},
	{
		Words: "show bgp vrf VRF",
		Help:  "every BGP path per prefix of the VRF",
		Run: func(_ context.Context, a *Agent, args Args, _ Reloader) (any, error) {
			return a.BGPTable(args["VRF"])
		},
		Text: textOf(show.BGPTable.Text),
	},
	{
		Words: "show bgp summary",
		Help:  "the BGP sessions",
		Run: func(ctx context.Context, a *Agent, _ Args, _ Reloader) (any, error) {
			return a.Summary(ctx)
		},
		Text: textOf(show.Summary.Text),
	},
	{
		Words: "show counters",
		Help:  "packets and bytes per VRF and verdict",
		Run: func(_ context.Context, a *Agent, _ Args, _ Reloader) (any, error) {
			return a.Counters()
		},
		Text: textOf(show.Counters.Text),
	},
	{
		Words: "show vrf leak-matrix",
		Help:  "packets forwarded from each VRF to each VRF (or to a VNI of another site), as the data path counted them",
		Run: func(_ context.Context, a *Agent, _ Args, _ Reloader) (any, error) {
			return a.LeakMatrix()
		},
		Text: textOf(show.LeakMatrix.Text),
	},
	{
		Words: "show underlay",
		Help:  "each remote VTEP's underlay next hops, as the data path uses them",
		Run: func(_ context.Context, a *Agent, _ Args, _ Reloader) (any, error) {
			return a.Underlay()
		},
		Text: textOf(show.Underlay.Text),
	},
	{
		Words: "explain PACKET...",
		Help:  "run the data path's program on one packet against the live tables, and show each step: explain " + ExplainUsage,
		Run: func(_ context.Context, a *Agent, args Args, _ Reloader) (any, error) {
			return a.Explain(strings.Fields(args["PACKET..."]))
		},
		Text: textOf(show.Explain.Text),
	},
	{
		Words: "verify",
		Help:  "compare the data path's tables with the RIB: every VRF's routes (prefix, kind, host VRF, remote VTEPs, VNIs, router MACs)",
		Run: func(_ context.Context, a *Agent, _ Args, _ Reloader) (any, error) {
			return a.Verify()
		},
		Text: textOf(VerifyReport.Text),
	},
	{
		Words: "show version",
		Help:  "the running xleafd's version and how long it has run",
		Run: func(_ context.Context, a *Agent, _ Args, _ Reloader) (any, error) {
			return Version{Version: a.opts.Version, Started: a.born, PID: os.Getpid()}, nil
		},
		Text: textOf(func(v Version, w io.Writer) error {
			_, err := fmt.Fprintf(w, "xleafd %s, pid %d, up %s (since %s)\n", v.Version, v.PID,
				time.Since(v.Started).Round(time.Second), v.Started.Format(time.RFC3339))
			return err
		}),
	},
	{
		Words: "shutdown",
		Help:  "stop xleafd for good: sessions end with a NOTIFICATION and peers drop its routes now (SIGTERM stops it gracefully)",
		Run: func(_ context.Context, a *Agent, _ Args, _ Reloader) (any, error) {
			a.Shutdown()
			return "xleafd stopping: its sessions end and its peers withdraw its routes; the data path stays pinned", nil
		},
		Text: textOf(func(s string, w io.Writer) error { _, err := fmt.Fprintln(w, s); return err }),
	},
	{
		Words: "config apply",
		Help:  "re-read the configuration file",
		Run: func(ctx context.Context, _ *Agent, _ Args, reload Reloader) (any, error) {
			if reload == nil {
				return nil, errors.New("no configuration file to re-read")
			}
			return "applied", reload(ctx)
		},
		Text: textOf(func(s string, w io.Writer) error { _, err := fmt.Fprintln(w, s); return err }),
	},
}

// Match finds the command typed as words and its arguments.
func Match(words []string) (Command, Args, bool) {
	for _, c := range Commands {
		if args, ok := c.match(words); ok {
			return c, args, true
		}
	}
	return Command{}, nil, false
}

func (c Command) match(words []string) (Args, bool) {
	pattern := strings.Fields(c.Words)
	args := Args{}
	// A last argument ending in "..." takes the rest of the words.
	if n := len(pattern); n > 0 && strings.HasSuffix(pattern[n-1], "...") && isArg(pattern[n-1]) && len(words) >= n-1 {
		args[pattern[n-1]] = strings.Join(words[n-1:], " ")
		pattern, words = pattern[:n-1], words[:n-1]
	}
	if len(words) != len(pattern) {
		return nil, false
	}
	for i, p := range pattern {
		switch {
		case isArg(p):
			args[p] = words[i]
		case words[i] != p:
			return nil, false
		}
	}
	return args, true
}

func isArg(word string) bool { return strings.ToUpper(word) == word && strings.ToLower(word) != word }

// Usage lists the commands, one a line with its help.
func Usage() string {
	width := 0
	for _, c := range Commands {
		width = max(width, len(c.Words))
	}
	var b strings.Builder
	for _, c := range Commands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.Words, c.Help)
	}
	return b.String()
}

// ErrUsage is a command xleafd does not know.
var ErrUsage = errors.New("unknown command; try: " + strings.Join(commandWords(), " | "))

func commandWords() []string {
	words := make([]string, len(Commands))
	for i, c := range Commands {
		words[i] = c.Words
	}
	return words
}

// textOf makes a renderer from a show type's Text method.
func textOf[T any](text func(T, io.Writer) error) func(io.Writer, json.RawMessage) error {
	return func(w io.Writer, data json.RawMessage) error {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode xleafd's answer: %w", err)
		}
		return text(v, w)
	}
}
