package main

// The recording commands: verify, export and replay of session recordings
// (see recorder/FORMAT.md).

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"

	"supportgate/recorder"
	"supportgate/session"
)

func init() {
	register(&command{name: "verify", summary: "check a recording's integrity and signatures (no key needed)", run: runVerify})
	register(&command{name: "export", summary: "export a recording as asciicast, ivf, jsonl or webm", run: runExport})
	register(&command{name: "replay", summary: "play a recording back in the terminal", run: runReplay})
}

// Exit codes of verify: scripts tell "intact but cut short" (2) from a
// command they called wrongly (3).
const (
	verifyTampered = 1
	verifyCutShort = 2
	verifyUsage    = 3
)

// runVerify implements `supportgate verify [--signer KEY] FILE`: exit 0
// intact and complete, 1 tampered (naming the record) or unreadable, 2
// intact but cut short, 3 usage error. FILE may also be an evidence bundle
// (a zip made by the review player); see verifyBundle.
func runVerify(env *cliEnv, args []string) error {
	fs := newFlags(env, "verify", "[--signer KEY] FILE\n\n"+
		"exit status: 0 intact and complete, 1 tampered (names the record) or unreadable,\n"+
		"2 intact but cut short, 3 usage error (bad flag, argument or --signer key)")
	signer := fs.String("signer", "", "trusted gateway signing key: base64 Ed25519 public key, or a file holding it")
	if err := parseFlags(fs, args); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			ee.code = verifyUsage
		}
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: verifyUsage, msg: "verify: exactly one FILE is required"}
	}
	var want ed25519.PublicKey
	if *signer != "" {
		k, err := loadSignerKey(*signer)
		if err != nil {
			return &exitError{code: verifyUsage, msg: "verify: --signer: " + err.Error()}
		}
		want = k
	}
	path := fs.Arg(0)
	if isZip(path) {
		return verifyBundle(env, path, want)
	}
	p := printable(path)
	rep, err := recorder.VerifyFile(path)
	var te *recorder.TamperError
	var ce *recorder.CutShortError
	switch {
	case errors.As(err, &te):
		fmt.Fprintf(env.stdout, "%s: TAMPERED: %s\n", p, tamperText(te))
		return &exitError{code: verifyTampered, msg: fmt.Sprintf("%s: tampered: %s", p, tamperText(te))}
	case err != nil && !errors.As(err, &ce):
		return &exitError{code: verifyTampered, msg: p + ": " + printable(strings.TrimPrefix(err.Error(), "recorder: "))}
	}
	printReport(env.stdout, rep)
	if parts, missing := sessionParts(path, rep.SessionID); len(parts) > 1 || len(missing) > 0 {
		// A session resumed after a restart goes on in ID.1.sgrec and
		// so on: each part verifies on its own, and this one alone is
		// not the whole session.
		fmt.Fprintf(env.stdout, "parts:      the session is recorded in %d files here: %s (verify each)\n", len(parts), strings.Join(parts, ", "))
		if len(missing) > 0 {
			fmt.Fprintf(env.stdout, "missing:    %s\n", strings.Join(missing, ", "))
		}
	}
	if want != nil && !want.Equal(rep.Signer) {
		fmt.Fprintf(env.stdout, "status:     TAMPERED: signed by an untrusted key\n")
		return &exitError{code: verifyTampered, msg: fmt.Sprintf("%s: tampered: signed by key %s, not the trusted gateway key", p, rep.SignerFingerprint())}
	}
	if ce != nil {
		fmt.Fprintf(env.stdout, "status:     intact but CUT SHORT after record %d (signed through record %d)\n", ce.Records, ce.Signed)
		return &exitError{code: verifyCutShort, msg: fmt.Sprintf("%s: intact but cut short after record %d (signed through record %d): %s", p, ce.Records, ce.Signed, printable(ce.Reason))}
	}
	fmt.Fprintf(env.stdout, "status:     intact and complete\n")
	return nil
}

// printable returns s unchanged when it is printable text, and otherwise
// quoted with Go escapes (strconv.Quote). Text from a recording or a
// bundle goes through it before it reaches a terminal, so that it cannot
// start a line, move the cursor or hide what follows (C0 and C1 controls,
// ESC, DEL, invalid UTF-8, bidirectional overrides).
func printable(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func tamperText(te *recorder.TamperError) string {
	if te.Record == 0 {
		return "header: " + printable(strings.TrimPrefix(te.Reason, "header: "))
	}
	return fmt.Sprintf("record %d: %s", te.Record, printable(te.Reason))
}

func printReport(w io.Writer, rep *recorder.Report) {
	fmt.Fprintf(w, "recording:  %s (session %s)\n", printable(rep.RecordingID), printable(rep.SessionID))
	fmt.Fprintf(w, "format:     version %d\n", rep.Version)
	fmt.Fprintf(w, "started:    %s\n", rep.Start.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "duration:   %s\n", rep.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "records:    %d (%d signed checkpoints)\n", rep.Records, rep.Checkpoints)
	fmt.Fprintf(w, "redactions: %d\n", rep.Stats.Redactions)
	if rep.Stats.Capped {
		fmt.Fprintf(w, "size cap:   reached, %d records dropped\n", rep.Stats.Dropped)
	}
	fmt.Fprintf(w, "signer:     %s (fingerprint %s)\n", base64.StdEncoding.EncodeToString(rep.Signer), rep.SignerFingerprint())
}

// loadSignerKey parses a base64 Ed25519 public key, given inline or in a file.
func loadSignerKey(s string) (ed25519.PublicKey, error) {
	if b, err := os.ReadFile(s); err == nil {
		s = string(b)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, errors.New("not a base64 Ed25519 public key")
	}
	return k, nil
}

// loadIdentities reads an age identity file as written by age-keygen.
func loadIdentities(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, errors.New("--identity is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

func openRecording(idPath, path string) (*recorder.Reader, error) {
	ids, err := loadIdentities(idPath)
	if err != nil {
		return nil, err
	}
	r, err := recorder.OpenFile(path, ids...)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "recorder: "))
	}
	return r, nil
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// runExport implements `supportgate export --identity KEY --format
// asciicast|ivf|jsonl|webm [--channel N] -o OUT FILE`.
func runExport(env *cliEnv, args []string) error {
	fs := newFlags(env, "export", "--identity KEY --format asciicast|ivf|jsonl|webm [--channel N] -o OUT FILE")
	idPath := fs.String("identity", "", "age identity file (from age-keygen) of a compliance recipient")
	format := fs.String("format", "", "output format: asciicast, ivf, jsonl or webm")
	outPath := fs.String("o", "", "output file")
	channel := fs.Int("channel", -1, "asciicast: the terminal channel to export, -1 for the first terminal channel")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *channel < -1 || *channel > recorder.MaxChannel || *channel >= 0 && *format != "asciicast" {
		return &exitError{code: 2, msg: "export: --channel takes a channel number, with --format asciicast only"}
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, msg: "export: exactly one FILE is required"}
	}
	if *outPath == "" {
		return &exitError{code: 2, msg: "export: -o OUT is required"}
	}
	var export func(io.WriteSeeker, *recorder.Reader, recorder.ExportOptions) error
	switch *format {
	case "asciicast":
		export = func(w io.WriteSeeker, r *recorder.Reader, o recorder.ExportOptions) error {
			return recorder.ExportAsciicast(w, r, o)
		}
	case "jsonl":
		export = func(w io.WriteSeeker, r *recorder.Reader, o recorder.ExportOptions) error {
			return recorder.ExportJSONL(w, r, o)
		}
	case "ivf":
		export = recorder.ExportIVF
	case "webm":
		export = func(w io.WriteSeeker, r *recorder.Reader, o recorder.ExportOptions) error {
			return recorder.ExportWebM(w, r, o)
		}
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("export: --format must be asciicast, ivf, jsonl or webm, not %q", *format)}
	}
	path := fs.Arg(0)
	r, err := openRecording(*idPath, path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer r.Close()
	out, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var opt recorder.ExportOptions
	if *channel >= 0 {
		opt.Channel = channel
	}
	bar := newProgressBar(env.stderr, r.Size())
	if bar != nil {
		opt.Progress = bar.update
	}
	var warnings []string // printed after the progress bar is gone
	opt.Warn = func(msg string) { warnings = append(warnings, msg) }
	err = export(out, r, opt)
	if bar != nil {
		bar.done()
	}
	for _, w := range warnings {
		fmt.Fprintf(env.stderr, "supportgate: export: %s: %s\n", path, oneLine(w))
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		return fmt.Errorf("export: %w", cerr)
	}
	var te *recorder.TamperError
	var ce *recorder.CutShortError
	switch {
	case errors.As(err, &te):
		return &exitError{code: 1, msg: fmt.Sprintf("export: %s: tampered: %s (output holds the records before it)", path, tamperText(te))}
	case errors.As(err, &ce):
		return &exitError{code: 2, msg: fmt.Sprintf("export: %s: cut short after record %d; exported the intact prefix to %s", path, ce.Records, *outPath)}
	case err != nil:
		return fmt.Errorf("export: %s", strings.TrimPrefix(err.Error(), "recorder: "))
	}
	return nil
}

// progressBar draws a one-line progress bar on a terminal, at most ten
// times a second.
type progressBar struct {
	w     io.Writer
	total int64
	last  time.Time
	shown bool
}

func newProgressBar(w io.Writer, total int64) *progressBar {
	if !isTerminal(w) || total < 1<<20 {
		return nil
	}
	return &progressBar{w: w, total: total}
}

func (p *progressBar) update(done, total int64) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.shown = now, true
	const width = 40
	n := int(done * width / max(total, 1))
	fmt.Fprintf(p.w, "\rexporting [%s%s] %3d%%", strings.Repeat("#", n), strings.Repeat(".", width-n), done*100/max(total, 1))
}

func (p *progressBar) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// sessionParts lists the recording files of session id in path's
// directory by part number: ID.sgrec, then ID.1.sgrec, ID.2.sgrec and so
// on, every one there, and missing, those before the last one that are
// not (a missing one in between does not hide the later ones). The id
// comes from the file and is used only if it is a valid session id.
func sessionParts(path, id string) (names, missing []string) {
	if !session.ValidID(id) {
		return nil, nil
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, nil
	}
	type part struct {
		n    int
		name string
	}
	var parts []part
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, id)
		if !ok || !strings.HasSuffix(rest, ".sgrec") {
			continue
		}
		n := 0
		if rest != ".sgrec" {
			num := strings.TrimSuffix(strings.TrimPrefix(rest, "."), ".sgrec")
			if n, err = strconv.Atoi(num); err != nil || n < 1 || strconv.Itoa(n) != num {
				continue
			}
		}
		parts = append(parts, part{n, name})
	}
	slices.SortFunc(parts, func(a, b part) int { return a.n - b.n })
	next := 0
	for _, p := range parts {
		for ; next < p.n; next++ {
			missing = append(missing, partName(id, next))
		}
		names = append(names, p.name)
		next = p.n + 1
	}
	return names, missing
}

func partName(id string, n int) string {
	if n == 0 {
		return id + ".sgrec"
	}
	return id + "." + strconv.Itoa(n) + ".sgrec"
}
