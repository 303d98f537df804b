package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"supportgate/session"
)

// FuzzDecodeRequest feeds arbitrary bodies to the JSON decoding every
// handler uses, into each request type: it must return an error or a
// value, never panic, and a decoded value must hold only valid scopes.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"customer":"ACME","scopes":["view","tunnel:80,443"],"duration":"30m"}`,
		`{"scopes":["view"]}`, `{"approve":true}`, `{"user":"a","password":"p","totp":"123456"}`,
		`{"customer":"x"} {}`, `{"scopes":"view"}`, `[]`, `null`, `{"scopes":[1]}`, "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		targets := []any{&createRequest{}, &loginRequest{}, &struct {
			Scopes session.Scopes `json:"scopes"`
		}{}, &struct {
			Approve *bool `json:"approve"`
		}{}}
		for _, v := range targets {
			r := httptest.NewRequest("POST", "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			err := decodeJSON(httptest.NewRecorder(), r, v)
			if err != nil {
				if _, ok := err.(*apiError); !ok {
					t.Fatalf("decode error %T is not an apiError: %v", err, err)
				}
				continue
			}
			if c, ok := v.(*createRequest); ok {
				for _, sc := range c.Scopes {
					if _, err := session.ParseScopes(sc.String()); err != nil {
						t.Fatalf("decoded an invalid scope %q", sc)
					}
				}
			}
		}
	})
}

func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/api/v1/users", "/api/v1/../x", "/a//b", "/a/%2e%2e/b", "/c/TOKEN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := http.NewRequest("GET", "https://x"+p, nil)
		if err != nil {
			return
		}
		if canonical(r) && (strings.Contains(r.URL.Path, "/../") || strings.Contains(r.URL.Path, "//") || strings.HasSuffix(r.URL.Path, "/..")) {
			t.Fatalf("accepted %q (path %q)", p, r.URL.Path)
		}
	})
}
