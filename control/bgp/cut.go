package bgp

import (
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// endpoint is a peer as its session's socket shows it: the peer's address
// (no zone) and the port it listens on.
type endpoint struct {
	addr netip.Addr
	port uint16
}

// cutSessions ends the sending half of every BGP session of ours at once,
// before GoBGP takes its peers down: each peer reads a FIN, as if this
// process had died, and keeps our routes (graceful restart), and nothing
// GoBGP writes afterwards leaves. Its StopBgp deletes peers one at a time,
// and each deletion withdraws that peer's routes from the peers not yet
// deleted: a border leaf stopping gracefully told its spine to drop the
// DCI's routes, whenever GoBGP's map order deleted the DCI peer first.
//
// The sessions are found among this process's descriptors: TCP sockets
// whose far end is a peer, on the peer's port or our listening port. The
// reading half stays open, so GoBGP sees each session end only when its
// peer closes in turn, after every session's FIN is out. It returns how
// many it cut.
func cutSessions(peers map[endpoint]bool, listenPort uint16) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	addrs := map[netip.Addr]bool{}
	for e := range peers {
		addrs[e.addr] = true
	}
	cut := 0
	for _, f := range fds {
		fd, err := strconv.Atoi(f.Name())
		if err != nil {
			continue
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			continue
		}
		remote, ok := sockAddr(unix.Getpeername(fd))
		if !ok || !addrs[remote.Addr()] {
			continue
		}
		local, ok := sockAddr(unix.Getsockname(fd))
		if !ok || (!peers[endpoint{remote.Addr(), remote.Port()}] && local.Port() != listenPort) {
			continue
		}
		if unix.Shutdown(fd, unix.SHUT_WR) == nil {
			cut++
		}
	}
	return cut
}

// sockAddr is an IPv4 or IPv6 socket address without its zone, IPv4-mapped
// addresses unmapped.
func sockAddr(sa unix.Sockaddr, err error) (netip.AddrPort, bool) {
	if err != nil {
		return netip.AddrPort{}, false
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}
