// Package version is the Mosquitto release a home is rendered for and the
// dialect of mosquitto.conf that release reads: 2.0 (acl_file,
// password_file, per_listener_settings) or 2.1 and later (the acl-file and
// password-file plugins, per-listener options), as observed on Debian's
// 2.0.11 and the upstream 2.1.2.
package version

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a Mosquitto release; Patch is -1 when only major.minor is known.
type Version struct{ Major, Minor, Patch int }

// Releases the renderer knows.
var (
	V2_0 = Version{2, 0, -1}
	V2_1 = Version{2, 1, -1}
)

func (v Version) String() string {
	if v.Patch < 0 {
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// IsZero reports whether no version is known.
func (v Version) IsZero() bool { return v == Version{} }

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?$`)

// Parse reads "2.1" or "2.1.2".
func Parse(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a Mosquitto version: write major.minor or major.minor.patch, e.g. \"2.1.2\"", s)
	}
	v := Version{Patch: -1}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

// tagRE is a tag that names a release, possibly with a variant suffix:
// "2.1.2", "2.0.20-openssl", "2.1-alpine".
var tagRE = regexp.MustCompile(`^v?(\d+\.\d+(?:\.\d+)?)(?:-[A-Za-z0-9_.-]+)?$`)

// FromImage reads the release from an image reference's tag
// ("eclipse-mosquitto:2.1.2", "registry:5000/mosquitto:2.0.20-openssl");
// false when the tag names none ("latest", "2", no tag, a digest only).
func FromImage(ref string) (Version, bool) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return Version{}, false
	}
	m := tagRE.FindStringSubmatch(ref[i+1:])
	if m == nil {
		return Version{}, false
	}
	v, err := Parse(m[1])
	return v, err == nil
}

var helpRE = regexp.MustCompile(`mosquitto version (\d+\.\d+(?:\.\d+)?)`)

// FromHelp reads the release from what `mosquitto -h` prints
// ("mosquitto version 2.1.2").
func FromHelp(out string) (Version, bool) {
	m := helpRE.FindStringSubmatch(out)
	if m == nil {
		return Version{}, false
	}
	v, err := Parse(m[1])
	return v, err == nil
}

// Plugins reports whether the release reads its acl and passwd through the
// acl-file and password-file plugins (2.1 and later). 2.1 still reads
// acl_file, password_file and per_listener_settings, but deprecates them
// (removed in 3.0) and 2.1.2 logs a notice for per_listener_settings.
func (v Version) Plugins() bool { return v.AtLeast(2, 1) }

// QuitsOnBadReload reports whether an acl or passwd that does not parse at
// SIGHUP makes the broker exit (2.1), where 2.0 runs on without ACL checks.
func (v Version) QuitsOnBadReload() bool { return v.AtLeast(2, 1) }

// DefaultMaxPacketSize is the max_packet_size the release applies when
// the option is left out: 2.1 caps packets at 2,000,000 bytes, 2.0 at
// MQTT's 268,435,455.
func (v Version) DefaultMaxPacketSize() int {
	if v.AtLeast(2, 1) {
		return 2000000
	}
	return 268435455
}

// DeniedNameChars are the characters that a plugin loaded from the config
// denies in usernames and client ids unless auth_plugin_deny_special_chars
// is false: '/', '+' and '#' on 2.1; 2.0's acl check denies '+' and '#'
// only once patterns exist (docs/mosquitto-formats.md).
func (v Version) DeniedNameChars() string {
	if v.Plugins() {
		return "/+#"
	}
	return ""
}
