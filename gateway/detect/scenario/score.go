package scenario

import (
	"fmt"
	"io"
	"slices"
	"time"

	"supportgate/gateway/detect"
)

// Slack is how long after an attack's last event an alert still counts for it.
const Slack = 2 * time.Hour

// Score is how a run of the detector did on a labelled log.
type Score struct {
	Caught      map[string]int // attack kind → attacks caught
	Injected    map[string]int // attack kind → attacks injected
	Missed      []Attack       // attacks with no matching alert
	False       []detect.Alert // alerts that match no attack
	AgentWeeks  int            // agents × weeks
	ByAgentWeek map[string]int // "agent/week" → false alerts, for the worst case
	Alerts      int            // alerts in all
}

// FalsePerAgentWeek is the false alerts per agent-week.
func (s Score) FalsePerAgentWeek() float64 {
	if s.AgentWeeks == 0 {
		return 0
	}
	return float64(len(s.False)) / float64(s.AgentWeeks)
}

// Recall is the fraction of attacks of a kind caught.
func (s Score) Recall(kind string) float64 {
	if s.Injected[kind] == 0 {
		return 0
	}
	return float64(s.Caught[kind]) / float64(s.Injected[kind])
}

// Add accumulates another run's score.
func (s *Score) Add(o Score) {
	if s.Caught == nil {
		s.Caught, s.Injected, s.ByAgentWeek = map[string]int{}, map[string]int{}, map[string]int{}
	}
	for k, v := range o.Caught {
		s.Caught[k] += v
	}
	for k, v := range o.Injected {
		s.Injected[k] += v
	}
	for k, v := range o.ByAgentWeek {
		s.ByAgentWeek[k] += v
	}
	s.Missed = append(s.Missed, o.Missed...)
	s.False = append(s.False, o.False...)
	s.AgentWeeks += o.AgentWeeks
	s.Alerts += o.Alerts
}

func within(a detect.Alert, at Attack) bool {
	return a.Agent == at.Agent && !a.Time.Before(at.From) && !a.Time.After(at.To.Add(Slack))
}

// Evaluate scores alerts against labels: an attack is caught by an alert on
// its agent, of one of its Expect kinds, between its first event and Slack
// after its last; an alert is false if it falls in no attack's window for
// its agent, whatever its kind.
func Evaluate(l Labels, alerts []detect.Alert) Score {
	s := Score{Caught: map[string]int{}, Injected: map[string]int{}, ByAgentWeek: map[string]int{},
		AgentWeeks: len(l.Agents) * l.Weeks, Alerts: len(alerts)}
	for _, at := range l.Attacks {
		s.Injected[at.Kind]++
		caught := slices.ContainsFunc(alerts, func(a detect.Alert) bool {
			return within(a, at) && slices.Contains(Expect[at.Kind], a.Kind)
		})
		if caught {
			s.Caught[at.Kind]++
		} else {
			s.Missed = append(s.Missed, at)
		}
	}
	for _, a := range alerts {
		if slices.ContainsFunc(l.Attacks, func(at Attack) bool { return within(a, at) }) {
			continue
		}
		s.False = append(s.False, a)
		week := int(a.Time.Sub(l.Config.Start) / (7 * 24 * time.Hour))
		s.ByAgentWeek[fmt.Sprintf("%s/%d", a.Agent, week)]++
	}
	return s
}

// Report writes the score as a small table.
func (s Score) Report(w io.Writer) {
	fmt.Fprintf(w, "%-16s %8s %8s %7s\n", "attack", "injected", "caught", "recall")
	for _, k := range Kinds {
		fmt.Fprintf(w, "%-16s %8d %8d %6.0f%%\n", k, s.Injected[k], s.Caught[k], 100*s.Recall(k))
	}
	worst := 0
	for _, n := range s.ByAgentWeek {
		worst = max(worst, n)
	}
	fmt.Fprintf(w, "false alerts: %d over %d agent-weeks = %.2f per agent-week (worst agent-week %d); %d alerts in all\n",
		len(s.False), s.AgentWeeks, s.FalsePerAgentWeek(), worst, s.Alerts)
}
