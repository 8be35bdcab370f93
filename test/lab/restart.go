package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pid is a switch's running xleafd, 0 if none.
func (l *Lab) pid(node string) int {
	b, err := os.ReadFile(filepath.Join(l.runDir(), node+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Kill sends sig to a switch's xleafd (SIGKILL: a crash; SIGTERM: a
// graceful stop) and waits until it is gone. Its data path stays pinned.
func (l *Lab) Kill(node string, sig syscall.Signal) error {
	pid := l.pid(node)
	if pid == 0 {
		return fmt.Errorf("%s: no xleafd running", node)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("%s: signal %v: %w", node, sig, err)
	}
	return l.gone(node, pid, 10*time.Second)
}

// Shutdown stops a switch's xleafd for good with 'xleafctl shutdown': its
// sessions end with a NOTIFICATION, so its peers withdraw its routes now.
func (l *Lab) Shutdown(node string) error {
	pid := l.pid(node)
	if pid == 0 {
		return fmt.Errorf("%s: no xleafd running", node)
	}
	out, err := exec.Command(filepath.Join(l.Bin, "xleafctl"), "--socket", l.Socket(node), "shutdown").CombinedOutput()
	if err != nil {
		return fmt.Errorf("xleafctl shutdown on %s: %v: %s", node, err, out)
	}
	return l.gone(node, pid, 10*time.Second)
}

func (l *Lab) gone(node string, pid int, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); processAlive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: xleafd (pid %d) still running %v after it was told to stop", node, pid, timeout)
		}
	}
	return os.Remove(filepath.Join(l.runDir(), node+".pid"))
}

// RestartOptions describe an agent restart under traffic.
type RestartOptions struct {
	Node   string
	Signal syscall.Signal // how it is stopped
	Down   time.Duration  // how long it stays stopped
	Rate   int            // probe datagrams a second, each way
	Watch  time.Duration  // after the restart: long enough to see its End-of-RIB sweep and its peers'
}

// RestartUnderTraffic runs ProbeFlows across the DCI leak while a switch's
// xleafd is stopped with a signal, left down, and started again; it
// returns what each flow lost, from the stop until Watch after the start.
func (l *Lab) RestartUnderTraffic(ctx context.Context, o RestartOptions) Event {
	name := fmt.Sprintf("%s %v, down %v", o.Node, o.Signal, o.Down)
	ev := chaos{name, func(ctx context.Context) (time.Time, error) {
		if err := l.Kill(o.Node, o.Signal); err != nil {
			return time.Now(), err
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.Down):
		}
		up := time.Now()
		return up, l.Restart(o.Node)
	}}
	return l.event(ctx, ev, StressOptions{Rate: o.Rate, Recover: 30 * time.Second, Watch: o.Watch})
}
