package schema

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzUnits: sizes and durations parse to non-negative numbers without
// overflow ("9223372036854775807w" wrapped around before), and what they
// accept reads back the same in its plainest form.
func FuzzUnits(f *testing.F) {
	for _, s := range []string{"1MiB", "10M", "1 TB", "268435455B", "30m", "12h", "7d", "2w", "1y", "9223372036854775807w", "0s", "", "m", "1m\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil {
			if n < 0 {
				t.Fatalf("ParseSize(%q) = %d", s, n)
			}
			if m, err := ParseSize(fmt.Sprintf("%dB", n)); err != nil || m != n {
				t.Fatalf("ParseSize(%q) = %d, but %dB reads %d, %v", s, n, n, m, err)
			}
		}
		if n, err := ParseDuration(s); err == nil {
			if n < 0 {
				t.Fatalf("ParseDuration(%q) = %d", s, n)
			}
			if m, err := ParseDuration(fmt.Sprintf("%ds", n)); err != nil || m != n {
				t.Fatalf("ParseDuration(%q) = %d, but %ds reads %d, %v", s, n, n, m, err)
			}
		}
		if n, canon, err := ParseExpiration(s); err == nil {
			if n < 1 || strings.ContainsAny(canon, " \t\r\n") {
				t.Fatalf("ParseExpiration(%q) = %d, %q", s, n, canon)
			}
			if m, c2, err := ParseExpiration(canon); err != nil || m != n || c2 != canon {
				t.Fatalf("ParseExpiration(%q) = %q, which reads back as %d %q %v", s, canon, m, c2, err)
			}
		}
	})
}

// FuzzCron: an accepted expression renders a crontab expression and an
// OnCalendar value of one line each, and its expression reads back the same.
func FuzzCron(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/15 * * * mon-fri", "0 0 1 jan,jul *", "0 3 * * *\n* * * * * evil", "0 3 * * 7", "5 4 * * sun", "60 * * * *", "0-59/7 1,2 3 4 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCron(s)
		if err != nil {
			return
		}
		cal := c.OnCalendar()
		if strings.ContainsAny(c.Expr+cal, "\r\n\x00") || strings.ContainsFunc(c.Expr+cal, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
			t.Fatalf("ParseCron(%q): expression %q, OnCalendar %q", s, c.Expr, cal)
		}
		c2, err := ParseCron(c.Expr)
		if err != nil || c2.Expr != c.Expr || c2.OnCalendar() != cal {
			t.Fatalf("ParseCron(%q) = %q / %q, which reads back as %q / %q, %v", s, c.Expr, cal, c2.Expr, c2.OnCalendar(), err)
		}
	})
}
