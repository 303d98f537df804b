package vt

import (
	"unicode"

	"golang.org/x/text/width"
)

// runeWidth is how many columns r takes on a terminal, as wcwidth(3)
// counts them: 2 for East Asian wide and fullwidth characters (CJK,
// Hangul syllables, fullwidth forms, most emoji), 0 for characters drawn
// together with the one before (combining marks, variation selectors,
// joiners and other format characters, and the Hangul vowels and final
// consonants that follow an initial one), 1 for everything else.
// Control characters never reach it.
func runeWidth(r rune) int {
	switch {
	case r < 0x300: // ASCII and Latin-1: the soft hyphen (format) takes a column too
		return 1
	case r >= 0x4e00 && r <= 0x9fff, // CJK unified ideographs
		r >= 0xac00 && r <= 0xd7a3, // Hangul syllables
		r >= 0x3041 && r <= 0x3096, // hiragana (not the combining sound marks after)
		r >= 0x30a1 && r <= 0x30fa: // katakana
		return 2 // the common wide ones, without the lookups below
	}
	if unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) || (r >= 0x1160 && r <= 0x11ff) {
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}
