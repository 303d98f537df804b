package detect

import (
	"regexp"
	"slices"
	"strings"
)

// A riskyPattern is one class of shell command worth a supervisor's eye.
type riskyPattern struct {
	category string // short name, used to fold repeats within a session
	what     string // completes "ran a command that ..."
	severity Severity
	re       *regexp.Regexp
	keywords []string // the regexp can only match a line containing one of these
}

// riskyPatterns are matched against a command line folded to lower case
// with runs of white space collapsed. Go's regexp runs in linear time, so an
// attacker's command line cannot make matching slow.
var riskyPatterns = []riskyPattern{
	{"credentials", "reads credential files", High, regexp.MustCompile(
		`(/etc/(g?shadow|sudoers|master\.passwd)\b|\.ssh/(id_[a-z0-9_]+|authorized_keys)\b|\.aws/credentials|\.kube/config|\.docker/config\.json|\.netrc\b|\.pgpass\b|\.git-credentials|/etc/ssl/private|\bsam\b.*\bsystem\b.*reg|reg(\.exe)? save hklm\\(sam|security)|\blsass\b|mimikatz|\.gnupg/|keychain|\bsecretsdump)`), []string{"shadow", "sudoers", "master.passwd", ".ssh/", ".aws/", ".kube/", ".docker/", ".netrc", ".pgpass", ".git-credentials", "ssl/private", "sam", "lsass", "mimikatz", ".gnupg/", "keychain", "secretsdump"}},
	{"download_exec", "pipes a download into a shell", Critical, regexp.MustCompile(
		`\b(curl|wget|fetch|iwr|invoke-webrequest)\b[^|;&]*\|\s*(sudo\s+(-\S+\s+)*)?(ba|z|da|k)?sh\b|\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(python[0-9.]*|perl|ruby|php|node)\b|(ba|z)?sh\s+<\(\s*(curl|wget)\b|\biex\s*\(?\s*\(?\s*(new-object\s+net\.webclient|iwr|invoke-webrequest)`), []string{"curl", "wget", "fetch", "iwr", "invoke-webrequest", "iex"}},
	{"history", "clears or disables shell history", High, regexp.MustCompile(
		`\bhistory\s+-[cw]\b|\bunset\s+histfile\b|\bhistfile=/dev/null|\bhistsize=0\b|\bset\s+\+o\s+history\b|(\brm|\bshred|\btruncate|>)\s*[^;|&]*(\.bash_history|\.zsh_history|\.history\b|psreadline)|\bclear-history\b|\bwevtutil(\.exe)?\s+cl\b|\bjournalctl\b.*--vacuum`), []string{"hist", "clear-history", "wevtutil", "journalctl", "psreadline"}},
	{"disable_security", "disables security tooling", Critical, regexp.MustCompile(
		`\bsetenforce\s+0\b|\bsystemctl\s+(stop|disable|mask|kill)\s+(\S+\s+)*(auditd|apparmor|firewalld|ufw|falcon-sensor|crowdstrike|osqueryd|wazuh-agent|clamav-daemon|sysmon|sentinelone|elastic-agent|fail2ban)\b|\bservice\s+(auditd|apparmor|firewalld|falcon-sensor|osqueryd|wazuh-agent)\s+stop\b|\bufw\s+disable\b|\biptables\s+(-[a-z]*f\b|--flush)|\bauditctl\s+-e\s*0\b|\bauditctl\s+-d\b|set-mppreference\s+.*-disable(realtimemonitoring|behaviormonitoring|ioavprotection)\s+\$?true|\bnetsh\s+advfirewall\s+set\s+\S+\s+state\s+off|\bsc(\.exe)?\s+(stop|config)\s+(windefend|sense|mpssvc)`), []string{"setenforce", "systemctl", "service", "ufw", "iptables", "auditctl", "set-mppreference", "netsh", "sc ", "sc.exe"}},
}

// RiskyMatch is a category a command line falls into.
type RiskyMatch struct {
	Category string
	What     string
	Severity Severity
}

// ClassifyCommand returns the risky categories of a shell command line, in
// the order of the pattern list; none for an ordinary command. The input is
// untrusted (whatever a shell user typed) and is read whole, in time linear
// in its length: a cut would let padding push the risky part past it.
func ClassifyCommand(cmd string) []RiskyMatch {
	norm := strings.ToLower(strings.Join(strings.Fields(cmd), " "))
	var out []RiskyMatch
	for _, p := range riskyPatterns {
		if containsAny(norm, p.keywords) && p.re.MatchString(norm) {
			out = append(out, RiskyMatch{Category: p.category, What: p.what, Severity: p.severity})
		}
	}
	return out
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Categories names ms' categories, comma-separated: the "risk" of a
// shell.command event, for a line too long for the audit log to hold
// whole.
func Categories(ms []RiskyMatch) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Category
	}
	return strings.Join(names, ",")
}

// categoryMatches returns the matches of the categories a "risk" detail
// names, in the order of the pattern list; unknown names are ignored.
func categoryMatches(risk string) []RiskyMatch {
	var out []RiskyMatch
	names := strings.Split(risk, ",")
	for _, p := range riskyPatterns {
		if slices.Contains(names, p.category) {
			out = append(out, RiskyMatch{Category: p.category, What: p.what, Severity: p.severity})
		}
	}
	return out
}
