package control

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xleaf/xleaf/control/config"
)

// The restart part. A start that finds the data path of an earlier run
// (ports still attached) is a graceful restart (RFC 4724): the sessions
// say so (R bit, forwarding kept for every family), the earlier run's
// routes keep forwarding, stale, in the data path and the kernel, and
// peers keep ours. Once every configured neighbour has sent its
// End-of-RIB for each of its families, or grace has passed, what nothing
// re-learned is swept and new sessions no longer claim a restart. A fresh
// start goes through the same steps with nothing stale to sweep.

// restart waits for the neighbours' End-of-RIBs.
type restart struct {
	log        *slog.Logger
	restarting bool // the data path of an earlier run was found
	done       func(why string)

	mu      sync.Mutex
	pending map[string]map[bool]bool // neighbour -> families (EVPN?) whose End-of-RIB is still to come
	over    bool
}

func newRestart(log *slog.Logger, restarting bool, done func(why string)) *restart {
	return &restart{log: log, restarting: restarting, done: done, pending: map[string]map[bool]bool{}}
}

// expect sets whose End-of-RIB ends the restart: every configured
// neighbour's, for each family it has.
func (r *restart) expect(cfg *config.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, n := range cfg.Default.Neighbors {
		ipv4, evpn := families(cfg, n)
		fams := map[bool]bool{}
		if ipv4 {
			fams[false] = true
		}
		if evpn {
			fams[true] = true
		}
		if len(fams) > 0 {
			r.pending[name] = fams
		}
	}
}

// wait ends the restart after grace whatever has come, unless ctx (the
// agent's life) ends first: a stopped agent sweeps nothing.
func (r *restart) wait(ctx context.Context, grace time.Duration) {
	r.mu.Lock()
	empty := len(r.pending) == 0
	r.mu.Unlock()
	if empty {
		r.finish("no neighbours")
		return
	}
	timer := time.AfterFunc(grace, func() {
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		missing := slices.Sorted(maps.Keys(r.pending))
		r.mu.Unlock()
		r.finish("grace passed; no End-of-RIB from " + strings.Join(missing, ", "))
	})
	context.AfterFunc(ctx, func() { timer.Stop() })
}

// eor records a neighbour's End-of-RIB for a family.
func (r *restart) eor(neighbor string, evpn bool) {
	r.mu.Lock()
	if fams := r.pending[neighbor]; fams != nil {
		delete(fams, evpn)
		if len(fams) == 0 {
			delete(r.pending, neighbor)
		}
	}
	all := len(r.pending) == 0
	r.mu.Unlock()
	if all {
		r.finish("every neighbour's End-of-RIB")
	}
}

func (r *restart) finish(why string) {
	r.mu.Lock()
	if r.over {
		r.mu.Unlock()
		return
	}
	r.over = true
	r.mu.Unlock()
	r.done(why)
}

// isOver says whether stale state may go.
func (r *restart) isOver() bool {
	if r == nil {
		return false // not started
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.over
}
