package main

import "testing"

// TestFitLine: the status line is cut to leave the terminal's last column
// free, so that its redraw each second does not wrap and leave copies of
// itself behind in a narrow terminal.
func TestFitLine(t *testing.T) {
	for _, tt := range []struct {
		line  string
		width int
		want  string
	}{
		{"alice connected | time left 29m", 0, "alice connected | time left 29m"},
		{"alice connected | time left 29m", 80, "alice connected | time left 29m"},
		{"alice connected | time left 29m", 32, "alice connected | time left 29m"}, // 31 runes
		{"alice connected | time left 29m", 31, "alice connected | time left 2…"},
		{"ünïcödé status", 6, "ünïc…"},
		{"abc", 1, "abc"},
	} {
		got := fitLine(tt.line, tt.width)
		if got != tt.want {
			t.Errorf("fitLine(%q, %d) = %q, want %q", tt.line, tt.width, got, tt.want)
		}
		if tt.width > 1 && len([]rune(got)) >= tt.width {
			t.Errorf("fitLine(%q, %d) = %q fills the last column", tt.line, tt.width, got)
		}
	}
}
