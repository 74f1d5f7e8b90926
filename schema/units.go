package schema

import (
	"fmt"
	"strconv"
	"strings"
)

var sizeUnits = map[string]int64{
	"B": 1, "KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
}

// splitNumber cuts "30m" into 30 and "m".
func splitNumber(s string) (int64, string, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, "", fmt.Errorf("%q does not start with a whole number", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%q: number too large", s)
	}
	return n, strings.TrimSpace(s[i:]), nil
}

// ParseSize reads a size with a unit ("1MiB", "512KB", "100B") into bytes.
// A unit is always required: Mosquitto's own message_size_limit read "10M"
// as 10 bytes, and mqttgen never guesses.
func ParseSize(s string) (int64, error) {
	n, unit, err := splitNumber(s)
	if err != nil {
		return 0, err
	}
	switch unit {
	case "":
		return 0, fmt.Errorf("%q has no unit: write e.g. \"%dB\" or \"%dKiB\"", s, n, n)
	case "K", "k", "M", "m", "G", "g":
		return 0, fmt.Errorf("unit %q of %q is ambiguous: write \"%d%siB\" (powers of 1024) or \"%d%sB\"", unit, s, n, strings.ToUpper(unit), n, strings.ToUpper(unit))
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q in %q: use B, KB, MB, GB, KiB, MiB or GiB", unit, s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

var durationUnits = map[string]int64{"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

// ParseDuration reads "30m", "12h", "7d" into seconds.
func ParseDuration(s string) (int64, error) {
	n, unit, err := splitNumber(s)
	if err != nil {
		return 0, err
	}
	if unit == "" {
		return 0, fmt.Errorf("%q has no unit: write e.g. \"%ds\", \"%dm\" or \"%dh\"", s, n, n, n)
	}
	mult, ok := durationUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q in %q: use s, m, h, d or w", unit, s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return n * mult, nil
}

// ParseExpiration checks persistent_client_expiration, which Mosquitto reads
// in hours, days, weeks, months or years and nothing finer.
func ParseExpiration(s string) (int64, string, error) {
	n, unit, err := splitNumber(s)
	if err != nil {
		return 0, "", err
	}
	switch unit {
	case "":
		return 0, "", fmt.Errorf("%q has no unit: write e.g. \"%dd\" (h, d, w or y)", s, n)
	case "m":
		return 0, "", fmt.Errorf("%q is ambiguous: Mosquitto reads m as months here; write \"%dh\" for hours or \"%dd\" for days (minutes cannot be expressed)", s, n, n)
	case "s":
		return 0, "", fmt.Errorf("%q: Mosquitto refuses to start with seconds here; use h, d, w or y", s)
	case "h", "d", "w", "y":
	default:
		return 0, "", fmt.Errorf("unknown unit %q in %q: use h, d, w or y", unit, s)
	}
	if n < 1 {
		return 0, "", fmt.Errorf("%q must be at least 1", s)
	}
	secs := map[string]int64{"h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}[unit]
	if n > (1<<62)/secs {
		return 0, "", fmt.Errorf("%q is too long", s)
	}
	return n * secs, fmt.Sprintf("%d%s", n, unit), nil
}

// Derived values, valid on a checked Config.

// AutosaveSeconds is persistence.autosave_interval in seconds.
func (p Persistence) AutosaveSeconds() int64 {
	n, _ := ParseDuration(p.AutosaveInterval)
	return n
}

// DefaultMaxPacketSize is the max_packet_size rendered when the home sets
// none: Mosquitto 2.1's own default (2,000,000 bytes). Without it Mosquitto
// 2.0 and the bundled broker accept packets up to MQTT's 256 MiB, and an
// unauthenticated client can make either buffer that much per connection
// before its CONNECT is even read; 2 MB still carries what a home sends (a
// camera snapshot, Zigbee2MQTT's device list of a large network).
const DefaultMaxPacketSize = 2_000_000

// MaxPacketBytes is limits.max_packet_size in bytes, DefaultMaxPacketSize
// when unset.
func (l Limits) MaxPacketBytes() int64 {
	if l.MaxPacketSize == "" {
		return DefaultMaxPacketSize
	}
	n, _ := ParseSize(l.MaxPacketSize)
	return n
}

// Expiration is persistent_client_expiration as Mosquitto writes it.
func (l Limits) Expiration() string {
	_, s, _ := ParseExpiration(l.PersistentClientExpiration)
	return s
}

// KeepaliveSeconds is limits.max_keepalive in seconds, 0 when unset.
func (l Limits) KeepaliveSeconds() int64 {
	if l.MaxKeepalive == "" {
		return 0
	}
	n, _ := ParseDuration(l.MaxKeepalive)
	return n
}
