package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// strftimeVerbs are the conversions Strftime supports: those of C's
// strftime that give the same output in every locale.
var strftimeVerbs = "aAbBdeFHIjklmMpSTyYzZs%nt"

func checkStrftime(format string) error {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		if i+1 == len(format) {
			return fmt.Errorf("%q ends in a lone %%", format)
		}
		i++
		if !strings.ContainsRune(strftimeVerbs, rune(format[i])) {
			return fmt.Errorf("%q: %%%c is not supported; use %%Y %%m %%d %%H %%M %%S %%z and the like", format, format[i])
		}
	}
	return nil
}

// Strftime formats t with a C strftime(3) format, as Mosquitto's
// log_timestamp_format does. Conversions checkStrftime refuses are written
// as they stand.
func Strftime(t time.Time, format string) string {
	var b strings.Builder
	pad := func(n, width int) {
		s := strconv.Itoa(n)
		for i := len(s); i < width; i++ {
			b.WriteByte('0')
		}
		b.WriteString(s)
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'A':
			b.WriteString(t.Format("Monday"))
		case 'b':
			b.WriteString(t.Format("Jan"))
		case 'B':
			b.WriteString(t.Format("January"))
		case 'd':
			pad(t.Day(), 2)
		case 'e':
			s := strconv.Itoa(t.Day())
			if len(s) < 2 {
				b.WriteByte(' ')
			}
			b.WriteString(s)
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'H':
			pad(t.Hour(), 2)
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			pad(h, 2)
		case 'j':
			pad(t.YearDay(), 3)
		case 'k':
			s := strconv.Itoa(t.Hour())
			if len(s) < 2 {
				b.WriteByte(' ')
			}
			b.WriteString(s)
		case 'l':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			s := strconv.Itoa(h)
			if len(s) < 2 {
				b.WriteByte(' ')
			}
			b.WriteString(s)
		case 'm':
			pad(int(t.Month()), 2)
		case 'M':
			pad(t.Minute(), 2)
		case 'p':
			b.WriteString(t.Format("PM"))
		case 'S':
			pad(t.Second(), 2)
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case 'y':
			pad(t.Year()%100, 2)
		case 'Y':
			b.WriteString(strconv.Itoa(t.Year()))
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'Z':
			b.WriteString(t.Format("MST"))
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
