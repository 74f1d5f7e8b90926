package conf

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// multiWord are the options whose value may hold spaces: Mosquitto reads
// the rest of their line (remote_password) or splits it into words itself
// (topic, listener, log_dest, addresses). Every other option takes one word.
var multiWord = map[string]bool{
	"remote_password": true, "topic": true, "listener": true, "log_dest": true, "address": true, "addresses": true,
}

// maxLine is the longest line Parse reads.
const maxLine = 1024 * 1024

// CheckValue reports why value cannot be written as the value of option key
// on one mosquitto.conf line that Mosquitto, and Parse, read back as exactly
// value: a line break or other control character would end the line and
// start options of its own (a second bridge, a listener, allow_anonymous),
// leading or trailing white space is stripped, and a space splits the value
// of a one-word option. Writers of mosquitto.conf call it on every value.
func CheckValue(key, value string) error {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		return fmt.Errorf("option name %q is not a mosquitto.conf option", key)
	}
	if value == "" {
		return fmt.Errorf("%s: empty value", key)
	}
	if err := checkLine(value); err != nil {
		return fmt.Errorf("%s %q: %v", key, value, err)
	}
	if value[0] == ' ' || value[len(value)-1] == ' ' {
		return fmt.Errorf("%s %q: leading or trailing spaces, which Mosquitto strips", key, value)
	}
	if !multiWord[key] && strings.Contains(value, " ") {
		return fmt.Errorf("%s %q: holds a space, and %s takes one word", key, value, key)
	}
	if len(key)+1+len(value) >= maxLine {
		return fmt.Errorf("%s: a line of %d bytes is longer than %d", key, len(key)+1+len(value), maxLine-1)
	}
	return nil
}

// CheckComment reports why text cannot be written after "# " on one
// comment line: a line break would end the comment and start an option.
func CheckComment(text string) error {
	if err := checkLine(text); err != nil {
		return fmt.Errorf("comment %q: %v", text, err)
	}
	return nil
}

// checkLine refuses what cannot stand inside one line of a mosquitto.conf:
// invalid UTF-8 and control characters (tab included: Mosquitto splits
// words at tabs too).
func checkLine(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return fmt.Errorf("holds the control character %U, which would end or split the line", r)
		}
	}
	return nil
}
