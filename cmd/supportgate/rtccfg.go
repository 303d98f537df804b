package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/pion/webrtc/v4"

	"supportgate/gateway/rtc"
)

// rtcConfig is the "rtc" block of serve's JSON config: where the screen
// share relay takes WebRTC media.
type rtcConfig struct {
	// UDPPorts is the ICE UDP port range, "MIN-MAX" (default 50000-50199);
	// open it in the firewall.
	UDPPorts string `json:"udp_ports"`
	// TCPAddr, if set, listens for ICE-TCP (for customers whose networks
	// drop UDP), such as ":8443" on another address or ":3479".
	TCPAddr string `json:"tcp_addr"`
	// PublicIPs replace the host candidates' addresses behind a 1:1 NAT.
	PublicIPs []string `json:"public_ips"`
	// TURN servers (coturn, see the README) for customers behind strict NATs.
	TURN []turnConfig `json:"turn"`
}

type turnConfig struct {
	URLs           []string `json:"urls"` // turn:host:3478?transport=udp, turns:host:5349
	Username       string   `json:"username"`
	CredentialFile string   `json:"credential_file"` // file holding the password
}

// relay turns the block into an rtc.Config; the returned listener (nil
// without TCPAddr) is the caller's to close.
func (c rtcConfig) relay() (rtc.Config, net.Listener, error) {
	var out rtc.Config
	ports := c.UDPPorts
	if ports == "" {
		ports = "50000-50199"
	}
	lo, hi, ok := strings.Cut(ports, "-")
	pmin, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	pmax, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if !ok || err1 != nil || err2 != nil || pmin == 0 || pmin > pmax {
		return out, nil, fmt.Errorf("rtc.udp_ports %q: want MIN-MAX", ports)
	}
	out.UDPPortMin, out.UDPPortMax = uint16(pmin), uint16(pmax)
	out.PublicIPs = c.PublicIPs
	for _, t := range c.TURN {
		s := webrtc.ICEServer{URLs: t.URLs, Username: t.Username}
		if t.CredentialFile != "" {
			b, err := os.ReadFile(t.CredentialFile)
			if err != nil {
				return out, nil, fmt.Errorf("rtc.turn: %w", err)
			}
			s.Credential = strings.TrimSpace(string(b))
		}
		out.ICEServers = append(out.ICEServers, s)
	}
	if c.TCPAddr != "" {
		ln, err := net.Listen("tcp", c.TCPAddr)
		if err != nil {
			return out, nil, fmt.Errorf("rtc.tcp_addr: %w", err)
		}
		out.TCP = ln
		return out, ln, nil
	}
	return out, nil, nil
}
