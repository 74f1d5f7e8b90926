package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// Cron is a checked five-field cron expression: minute hour day-of-month
// month day-of-week.
type Cron struct {
	Expr   string
	fields [5]string
}

var cronFields = [5]struct {
	name     string
	min, max int
	names    []string
}{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

var weekdays = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// ParseCron checks a cron expression that systemd's OnCalendar can express
// too, so that the cron line and the timer mqttgen renders mean the same.
func ParseCron(expr string) (Cron, error) {
	if strings.ContainsFunc(expr, func(r rune) bool { return r != ' ' && (r < 0x20 || r >= 0x7f) }) {
		return Cron{}, fmt.Errorf("%q: a cron expression is printable ASCII fields separated by spaces", expr)
	}
	f := strings.Fields(expr)
	if len(f) != 5 {
		return Cron{}, fmt.Errorf("%q: want five fields, minute hour day month weekday, e.g. \"0 3 * * *\"", expr)
	}
	c := Cron{Expr: strings.Join(f, " ")}
	for i, field := range f {
		conv, err := convertField(i, strings.ToLower(field))
		if err != nil {
			return Cron{}, fmt.Errorf("%q: %s %q: %v", expr, cronFields[i].name, field, err)
		}
		c.fields[i] = conv
	}
	if f[2] != "*" && f[4] != "*" {
		return Cron{}, fmt.Errorf("%q: cron runs when either the day of month or the weekday matches, systemd when both do: restrict only one", expr)
	}
	return c, nil
}

// convertField turns one cron field into its OnCalendar form.
func convertField(i int, field string) (string, error) {
	spec := cronFields[i]
	var parts []string
	for _, item := range strings.Split(field, ",") {
		rng, step, hasStep := strings.Cut(item, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 {
				return "", fmt.Errorf("step %q is not a positive number", step)
			}
			if i == 4 {
				return "", fmt.Errorf("steps in the weekday cannot be written for systemd")
			}
			switch {
			case rng == "*":
				parts = append(parts, fmt.Sprintf("%s/%d", pad(i, spec.min), n))
				continue
			case !strings.Contains(rng, "-"):
				v, err := value(i, rng)
				if err != nil {
					return "", err
				}
				parts = append(parts, fmt.Sprintf("%s/%d", pad(i, v), n))
				continue
			default:
				return "", fmt.Errorf("a range with a step cannot be written for systemd: list the values")
			}
		}
		if rng == "*" {
			if len(strings.Split(field, ",")) > 1 {
				return "", fmt.Errorf("'*' in a list")
			}
			return "*", nil
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := value(i, lo)
		if err != nil {
			return "", err
		}
		if !isRange {
			parts = append(parts, pad(i, a))
			continue
		}
		b, err := value(i, hi)
		if err != nil {
			return "", err
		}
		if b < a {
			return "", fmt.Errorf("range %s runs backwards", rng)
		}
		parts = append(parts, pad(i, a)+".."+pad(i, b))
	}
	return strings.Join(parts, ","), nil
}

func value(i int, s string) (int, error) {
	spec := cronFields[i]
	for n, name := range spec.names {
		if s == name {
			if i == 3 {
				return n + 1, nil
			}
			return n, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < spec.min || v > spec.max {
		return 0, fmt.Errorf("%q is not from %d to %d", s, spec.min, spec.max)
	}
	return v, nil
}

func pad(i, v int) string {
	if i == 4 {
		return weekdays[v]
	}
	return fmt.Sprintf("%02d", v)
}

// OnCalendar is the expression as systemd's timer reads it.
func (c Cron) OnCalendar() string {
	min, hour, dom, month, dow := c.fields[0], c.fields[1], c.fields[2], c.fields[3], c.fields[4]
	s := fmt.Sprintf("*-%s-%s %s:%s:00", month, dom, hour, min)
	if dow != "*" {
		s = dow + " " + s
	}
	return s
}
