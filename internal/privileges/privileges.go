// Package privileges drops a process started as root to an unprivileged
// user, as Mosquitto does: the bundled broker (to its configured user) and
// `mqttgen exporter` (to mosquitto, 1883 in the image) use it.
package privileges

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// Drop switches a process started as root to name (mosquitto
// when empty) and its groups, as Mosquitto does; "root" stays root.
func Drop(name string, stderr io.Writer) error {
	if os.Geteuid() != 0 {
		return nil
	}
	explicit := name != ""
	if !explicit {
		name = "mosquitto"
	}
	if name == "root" {
		fmt.Fprintln(stderr, "Warning: the broker keeps running as root (user root).")
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if explicit {
			return fmt.Errorf("user %s: %w", name, err)
		}
		fmt.Fprintf(stderr, "Warning: running as root: user %s does not exist to drop privileges to.\n", name)
		return nil
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("user %s: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	groups := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				groups = append(groups, n)
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("dropping privileges to %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("dropping privileges to %s: setgid: %w", name, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("dropping privileges to %s: setuid: %w", name, err)
	}
	return nil
}
