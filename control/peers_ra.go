package control

import (
	"context"
	"net"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// raInterval is how often an unnumbered port announces itself.
const raInterval = 10 * time.Second

// advertiseRouter sends IPv6 router advertisements on an unnumbered port
// until ctx ends, with a router lifetime of zero (not a default router):
// FRR and Cumulus learn a BGP unnumbered neighbour's link-local address
// from its advertisements, as we learn theirs from the neighbour table.
func advertiseRouter(ctx context.Context, port string) {
	ticker := time.NewTicker(raInterval)
	defer ticker.Stop()
	for {
		sendRA(port)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func sendRA(port string) {
	ifc, err := net.InterfaceByName(port)
	if err != nil {
		return
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::%"+port)
	if err != nil {
		return
	}
	defer c.Close()
	p := c.IPv6PacketConn()
	p.SetMulticastHopLimit(255) // neighbour discovery accepts only 255
	p.SetMulticastInterface(ifc)
	body := []byte{
		64, 0, 0, 0, // cur hop limit, flags, router lifetime 0
		0, 0, 0, 0, // reachable time
		0, 0, 0, 0, // retrans timer
		1, 1, // option: source link-layer address, 8 bytes
	}
	body = append(body, ifc.HardwareAddr...)
	msg := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return
	}
	c.WriteTo(b, &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: port})
}
