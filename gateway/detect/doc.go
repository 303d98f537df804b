// Package detect watches the audit stream for agent behaviour that its owner
// never shows and raises explained alerts.
//
// A Detector is fed every stored audit record (Observe, non-blocking, from
// gateway.Config.OnAudit). One goroutine it owns consumes a bounded queue in
// record order, keeps a Baseline per agent (robust statistics: medians and
// median absolute deviations over recent samples, an hour-of-day activity
// histogram, known addresses, networks, user agents and customers) and
// applies rules. All windows and baselines run on event time, so replaying an
// exported log gives the alerts the live gateway would have given.
//
// # Events consumed
//
// From the gateway today: login.success, login.failure, login.mfa_failure,
// login.refused, user.lockout, logout, session.created (detail customer,
// agent), session.approved, session.ended (detail reason, agent) and
// consent.refused. Remote is the client address. login.success may carry
// detail "user_agent"; if present it is learnt like addresses.
//
// From the SSH bastion (gateway/bastion):
//
//	shell.command   Actor: agent, Session: id, Remote: agent address,
//	                Detail: {"agent": name, "command": the command line,
//	                truncated to audit.MaxDetailValBytes, "risk": the
//	                categories ClassifyCommand gave the whole line,
//	                comma-separated, when it gave any}
//	channel.closed  Actor: agent, Session: id, Remote: agent address,
//	                Detail: {"agent": name, "channel": "shell"|"exec"|"sftp"|
//	                "direct-tcpip", "bytes_out": decimal bytes sent from the
//	                customer's machine to the agent on that channel,
//	                "bytes_in": decimal bytes the other way}
//
// bytes_out is per channel; the detector sums it per session.
//
// # Rules
//
// See Kind for the list. Baseline rules (session_burst, many_customers,
// unusual_login, denials, bulk_output) compare against the agent's own
// history and fall back to DefaultRules for new agents; the others need no
// history. An alert for the same agent and kind within Rules.Cooldown is
// folded into the open one (its Count and Summary are updated) rather than
// raised again.
//
// # Delivery
//
// Alerts are kept in memory (Alerts, Ack, Resolve), passed to OnAlert and
// OnCritical, and handed to Sinks: Webhook (JSON, HMAC-SHA256 signed, retried
// with backoff) and Syslog (RFC 5424 over UDP or TCP). Sinks queue and never
// block the detector.
package detect
