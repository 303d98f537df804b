package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/detect"
	"supportgate/gateway/detect/scenario"
)

func init() {
	register(&command{name: "detect", summary: "run the detector over an exported audit log (detect replay FILE)", run: runDetect})
}

const detectUsage = "usage: supportgate detect replay FILE [--json] [--min-severity S] [--location ZONE] [--labels FILE] [--save-baselines FILE]"

func runDetect(env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "replay" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(env.stdout, detectUsage)
			return errHelpShown
		}
		return &exitError{code: 2, msg: detectUsage}
	}
	fs := newFlags(env, "detect replay", "FILE (an `audit export` log; - for standard input)")
	asJSON := fs.Bool("json", false, "print alerts as JSON lines")
	minSev := fs.String("min-severity", "info", "print only alerts at or above this `severity` (info, low, medium, high, critical)")
	zone := fs.String("location", "UTC", "time `zone` of working hours and days (IANA name)")
	labels := fs.String("labels", "", "score the alerts against scenario labels from `file` (recall per attack, false alerts)")
	saveBase := fs.String("save-baselines", "", "write the learnt baselines as a JSON snapshot to `file`")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, msg: detectUsage}
	}
	floor, err := detect.ParseSeverity(*minSev)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	loc, err := time.LoadLocation(*zone)
	if err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("detect replay: location %q: %v", *zone, err)}
	}
	var in io.Reader = env.stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}

	// The replay clock is the time of the record being processed, so
	// Raised and Updated are reproducible.
	var clock atomic.Int64
	store := detect.NewMemStore()
	d, err := detect.New(detect.Config{
		Now:       func() time.Time { return time.Unix(0, clock.Load()).UTC() },
		Location:  loc,
		Baselines: store,
		MaxAlerts: 1 << 20,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	ctx := context.Background()
	n := 0
	err = audit.ReadJSONL(in, func(r audit.Record) error {
		n++
		if err := d.Flush(ctx); err != nil { // keep the clock in step with the rules
			return err
		}
		clock.Store(r.Time.UnixNano())
		return d.ObserveWait(ctx, r)
	})
	if err != nil {
		return fmt.Errorf("detect replay: %w", err)
	}
	if err := d.Flush(ctx); err != nil {
		return err
	}
	alerts := d.Alerts()
	enc := json.NewEncoder(env.stdout)
	shown := 0
	for _, a := range alerts {
		if a.Severity < floor {
			continue
		}
		shown++
		if *asJSON {
			if err := enc.Encode(a); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(env.stdout, a)
	}
	if !*asJSON {
		fmt.Fprintf(env.stdout, "%d alerts (%d shown) from %d records\n", len(alerts), shown, n)
	}
	if *labels != "" {
		f, err := os.Open(*labels)
		if err != nil {
			return err
		}
		lab, err := scenario.ReadLabels(f)
		f.Close()
		if err != nil {
			return err
		}
		scenario.Evaluate(lab, alerts).Report(env.stdout)
	}
	if *saveBase != "" {
		if err := d.Close(); err != nil {
			return err
		}
		f, err := os.OpenFile(*saveBase, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if err := store.WriteSnapshot(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
