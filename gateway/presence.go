package gateway

import (
	"context"
	"sort"
	"sync"
)

// Participant is someone connected to a session through a transport right
// now: the agent in a shell, a supervisor watching, a forward.
type Participant struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Channel string `json:"channel"`
}

// presence counts, per session, the open channels of each participant as
// the transports report them.
type presence struct {
	mu sync.Mutex // guards m
	m  map[string]map[Participant]int
}

// change applies one report and says whether the session's list of
// participants changed.
func (p *presence) change(id string, who Participant, joined bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]map[Participant]int{}
	}
	ps := p.m[id]
	if joined {
		if ps == nil {
			ps = map[Participant]int{}
			p.m[id] = ps
		}
		ps[who]++
		return ps[who] == 1
	}
	if ps[who] == 0 {
		return false
	}
	ps[who]--
	if ps[who] > 0 {
		return false
	}
	delete(ps, who)
	if len(ps) == 0 {
		delete(p.m, id)
	}
	return true
}

// list returns the participants of a session, sorted.
func (p *presence) list(id string) []Participant {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Participant, 0, len(p.m[id]))
	for who := range p.m[id] {
		out = append(out, who)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Channel < b.Channel
	})
	return out
}

// Presence is told by a transport (the SSH bastion) that someone joined or
// left a channel of a session; the customer's views are updated when the
// list of who is connected changes.
func (g *Gateway) Presence(sessionID string, who Participant, joined bool) {
	if !g.presence.change(sessionID, who, joined) {
		return
	}
	if s, err := g.broker.Get(context.Background(), sessionID); err == nil {
		g.hub.publish(s)
	}
}
