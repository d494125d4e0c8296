package device

import (
	"strings"
	"testing"
)

func TestAlphabet(t *testing.T) {
	if len(Alphabet) != 20 {
		t.Fatalf("alphabet has %d letters, want 20", len(Alphabet))
	}
	if strings.ContainsAny(Alphabet, "AEIOUY0123456789") {
		t.Errorf("alphabet %q has a vowel or a digit", Alphabet)
	}
	seen := map[rune]int{}
	for range 2000 {
		c := newUserCode()
		if len(c) != userCodeLen {
			t.Fatalf("code %q is not 8 letters", c)
		}
		for _, r := range c {
			if !strings.ContainsRune(Alphabet, r) {
				t.Fatalf("code %q has %q, outside the alphabet", c, r)
			}
			seen[r]++
		}
	}
	// 16000 letters, 800 expected per letter: every letter is drawn and
	// none is far off (a biased modulo would show as ~10% skew at most;
	// this only catches gross mistakes).
	for _, r := range Alphabet {
		if n := seen[r]; n < 600 || n > 1000 {
			t.Errorf("letter %q drawn %d times in 16000, want about 800", r, n)
		}
	}
}

func TestNormaliseUserCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"bcdf-ghjk", "BCDFGHJK", true},
		{"bcdfghjk", "BCDFGHJK", true},
		{"  BcDf GhJk ", "BCDFGHJK", true},
		{"BCDF--GHJK", "BCDFGHJK", true},
		{"BCDF-GHJ", "", false},
		{"BCDF-GHJKL", "", false},
		{"ABCD-EFGH", "", false}, // vowels are not in the alphabet
		{"BCDF-GHJ1", "", false}, // nor digits
		{"BCDF-GHJǨ", "", false}, // nor anything outside ASCII
		{"", "", false},
		{strings.Repeat("B", 40), "", false},
	} {
		got, ok := normaliseUserCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normaliseUserCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got := formatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("formatUserCode = %q", got)
	}
}

// FuzzNormaliseUserCode: whatever a person (or an attacker) types, an
// accepted code is 8 letters of the alphabet, typed with nothing but ASCII
// letters, hyphens and spaces, and reads back the same when shown.
func FuzzNormaliseUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdfghjk", " bcdf ghjk ", "ſCDF-GHJK", "BCDF-GHJ", "BCDF-GHJKL", "BCDF\x00GHJK", "ＢCDF-GHJK", strings.Repeat("B", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, ok := normaliseUserCode(in)
		if !ok {
			return
		}
		if len(code) != userCodeLen || strings.Trim(code, Alphabet) != "" {
			t.Fatalf("%q → %q, not 8 letters of the alphabet", in, code)
		}
		for _, r := range strings.TrimSpace(in) {
			if r >= 0x80 || !(r == '-' || r == ' ' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
				t.Fatalf("%q accepted with %q in it", in, r)
			}
		}
		if again, ok := normaliseUserCode(formatUserCode(code)); !ok || again != code {
			t.Fatalf("%q shown as %q reads back as %q", code, formatUserCode(code), again)
		}
	})
}
