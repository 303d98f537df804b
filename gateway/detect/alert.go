package detect

import (
	"encoding/json"
	"fmt"
	"time"
)

// Severity orders alerts. Critical alerts call Config.OnCritical.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity is the inverse of Severity.String.
func ParseSeverity(v string) (Severity, error) {
	for i, n := range severityNames {
		if n == v {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("detect: unknown severity %q (want info, low, medium, high or critical)", v)
}

// MarshalText encodes a Severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a Severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Kind names the rule that raised an alert.
type Kind string

// Kinds of alert.
const (
	KindSessionBurst   Kind = "session_burst"        // sessions opened far above the agent's hourly rate
	KindManyCustomers  Kind = "many_customers"       // distinct customers in a day far above the agent's norm
	KindUnusualLogin   Kind = "unusual_login"        // sign-in from a never-seen network outside usual hours
	KindDenials        Kind = "denials"              // a burst of customers refusing consent
	KindBulkOutput     Kind = "bulk_output"          // bytes out of a session far above the agent's norm
	KindMFAFailures    Kind = "mfa_failures"         // repeated second-factor failures: password known, TOTP guessed
	KindPasswordGuess  Kind = "password_guessing"    // repeated password failures for one account
	KindConcurrentAddr Kind = "concurrent_addresses" // one account active from two networks at once
	KindRiskyCommand   Kind = "risky_command"        // a shell command from the risky list
	KindNewCustomerNet Kind = "new_customer_network" // a known customer approved from a network never seen for them
	KindSelfApproval   Kind = "self_approval"        // consent given from an address the agent itself was using
)

// State is where an alert is in its handling.
type State string

// Alert states.
const (
	Open         State = "open"
	Acknowledged State = "acknowledged"
	Resolved     State = "resolved"
)

// MaxEvidence bounds Alert.Evidence.
const MaxEvidence = 32

// Alert is one finding, with a sentence a supervisor can act on.
type Alert struct {
	ID       string    `json:"id"`       // unique within a Detector: "a1", "a2", ...
	Time     time.Time `json:"time"`     // event time of the record that raised it
	Raised   time.Time `json:"raised"`   // Config.Now when raised
	Kind     Kind      `json:"kind"`     // the rule
	Severity Severity  `json:"severity"` // may rise as occurrences fold in
	Agent    string    `json:"agent"`    // the account concerned
	Session  string    `json:"session,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Summary  string    `json:"summary"`  // e.g. "alice opened 14 sessions in 10 minutes; ..."
	Evidence []uint64  `json:"evidence"` // audit record Seqs, at most MaxEvidence
	Count    int       `json:"count"`    // occurrences folded into this alert
	State    State     `json:"state"`
	By       string    `json:"by,omitempty"`   // who last acknowledged or resolved it
	Note     string    `json:"note,omitempty"` // the incident note
	Updated  time.Time `json:"updated"`        // Config.Now of the last change
}

// String is the one-line form used by `supportgate detect replay`.
func (a Alert) String() string {
	return fmt.Sprintf("%s %-8s %-20s %s", a.Time.UTC().Format(time.RFC3339), a.Severity, a.Kind, a.Summary)
}

func (a Alert) clone() Alert {
	a.Evidence = append([]uint64(nil), a.Evidence...)
	return a
}

// MarshalJSON keeps Evidence an array even when empty.
func (a Alert) MarshalJSON() ([]byte, error) {
	type plain Alert
	if a.Evidence == nil {
		a.Evidence = []uint64{}
	}
	return json.Marshal(plain(a))
}
