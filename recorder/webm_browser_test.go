package recorder_test

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"supportgate/gateway/browsertest"
	"supportgate/recorder/recordertest"
)

// TestChromiumPlaysWebMExport plays an exported WebM in Chromium's <video>
// element, as the compliance review player will: the metadata (size,
// duration, seekable range) loads, a seek between key frames lands and
// shows a frame, and playback runs to the end without a media error.
func TestChromiumPlaysWebMExport(t *testing.T) {
	frames := fixtureFrames(t)
	k := recordertest.NewKeys(t)
	webm, warnings, err := exportWebM(t, k, writeMediaRecording(t, k, frames, nil))
	if err != nil || len(warnings) > 0 {
		t.Fatalf("export: %v %q", err, warnings)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<!doctype html><video id="v" src="/share.webm" muted preload="auto"></video>`))
		case "/share.webm":
			w.Header().Set("Content-Type", "video/webm")
			http.ServeContent(w, r, "share.webm", time.Time{}, bytes.NewReader(webm)) // with Range requests
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	p := browsertest.New(t, browsertest.SPKIPin(srv.Certificate()))
	p.Do(chromedp.Navigate(srv.URL+"/"), chromedp.WaitReady(chromedp.CSS("#v")))
	p.Do(browsertest.Until(`(v => v.readyState >= 1 || v.error)(document.getElementById("v"))`))
	const read = `(v => ({error: v.error && v.error.code, w: v.videoWidth, h: v.videoHeight, duration: v.duration,
		seekableEnd: v.seekable.length ? v.seekable.end(v.seekable.length - 1) : -1,
		time: v.currentTime, ready: v.readyState, ended: v.ended}))(document.getElementById("v"))`
	type jsState struct {
		Error       *int    `json:"error"`
		W           int     `json:"w"`
		H           int     `json:"h"`
		Duration    float64 `json:"duration"`
		SeekableEnd float64 `json:"seekableEnd"`
		Time        float64 `json:"time"`
		Ready       int     `json:"ready"`
		Ended       bool    `json:"ended"`
	}
	s := browsertest.Eval[jsState](p, read)
	if s.Error != nil {
		t.Fatalf("loading: media error %d", *s.Error)
	}
	if s.W != 320 || s.H != 240 || math.Abs(s.Duration-3) > 0.1 || math.Abs(s.SeekableEnd-3) > 0.1 {
		t.Errorf("metadata: got %dx%d, duration %v, seekable to %v; want 320x240, 3 s", s.W, s.H, s.Duration, s.SeekableEnd)
	}

	// 1.5 s is between the key frames at 1 s and 2 s.
	p.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById("v").currentTime = 1.5, undefined`),
		browsertest.Until(`(v => (!v.seeking && v.currentTime === 1.5 && v.readyState >= 2) || v.error)(document.getElementById("v"))`))
	if s = browsertest.Eval[jsState](p, read); s.Error != nil {
		t.Fatalf("seeking: media error %d", *s.Error)
	}

	p.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById("v").play(), undefined`),
		browsertest.Until(`(v => v.ended || v.error)(document.getElementById("v"))`))
	if s = browsertest.Eval[jsState](p, read); s.Error != nil || !s.Ended || math.Abs(s.Time-3) > 0.1 {
		t.Errorf("playing to the end: got error %v, ended %v at %v s", s.Error, s.Ended, s.Time)
	}
}
