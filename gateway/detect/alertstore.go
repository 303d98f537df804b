package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// AlertStore keeps the alert list, the incident record, across restarts.
type AlertStore interface {
	LoadAlerts() ([]Alert, error)
	SaveAlerts([]Alert) error
}

// alertsFile is DirStore's file for alerts; the leading underscore keeps it
// apart from agents' baseline files, whose names start with a letter.
const alertsFile = "_alerts.json"

// MaxAlertsFileBytes bounds the alerts file DirStore reads back.
const MaxAlertsFileBytes = 64 << 20

var _ AlertStore = DirStore{}

// LoadAlerts reads DIR/_alerts.json; none is an empty list.
func (d DirStore) LoadAlerts() ([]Alert, error) {
	p := filepath.Join(d.Dir, alertsFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) > MaxAlertsFileBytes {
		return nil, fmt.Errorf("detect: %s is larger than %d bytes", p, MaxAlertsFileBytes)
	}
	var out []Alert
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("detect: reading %s: %w", p, err)
	}
	return out, nil
}

// SaveAlerts replaces DIR/_alerts.json atomically.
func (d DirStore) SaveAlerts(as []Alert) error {
	b, err := json.Marshal(as)
	if err != nil {
		return err
	}
	return d.writeFile(alertsFile, b)
}

// loadAlerts restores the alerts of an earlier run, continuing their ids.
func (d *Detector) loadAlerts() error {
	if d.cfg.Alerts == nil {
		return nil
	}
	as, err := d.cfg.Alerts.LoadAlerts()
	if err != nil {
		return fmt.Errorf("detect: loading alerts: %w", err)
	}
	for i := range as {
		a := as[i].clone()
		if _, dup := d.byID[a.ID]; dup || a.ID == "" {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimPrefix(a.ID, "a")); err == nil && n > d.nextID {
			d.nextID = n
		}
		d.alerts = append(d.alerts, &a)
		d.byID[a.ID] = &a
	}
	d.pruneAlertsLocked()
	return nil
}

// saveAlerts writes the current alerts to the AlertStore, if any. Called
// without d.mu held.
func (d *Detector) saveAlerts() {
	if d.cfg.Alerts == nil {
		return
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	snap := make([]Alert, len(d.alerts))
	for i, a := range d.alerts {
		snap[i] = a.clone()
	}
	d.mu.Unlock()
	if err := d.cfg.Alerts.SaveAlerts(snap); err != nil {
		d.log.Error("saving alerts", "err", err)
	}
}
