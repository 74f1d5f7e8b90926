package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the terminal end (what a command writes
// to, as to a user's terminal) and the other end (what the user sees).
func openPTY(t *testing.T) (term, user *os.File) {
	t.Helper()
	// Non-blocking, so that os.File reads through the poller and honours
	// a read deadline.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	user = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(int(user.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(user.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	term, err = os.OpenFile(filepath.Join("/dev/pts", strconv.Itoa(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close(); user.Close() })
	return term, user
}

// readAvailable reads what the terminal shows within a moment.
func readAvailable(t *testing.T, f *os.File) string {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// TestColourOnTerminal: on a terminal, errors are red and warnings yellow;
// NO_COLOR, a pipe or a file get plain text.
func TestColourOnTerminal(t *testing.T) {
	dir := t.TempDir()
	home := "package home\nlisteners: mqtt: port: 1883\nanonymous: allowed: true\nusers: admin: acl: [\"readwrit #\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	term, user := openPTY(t)
	run([]string{"vet", dir}, term, term)
	shown := readAvailable(t, user)
	if !strings.Contains(shown, red) || !strings.Contains(shown, yellow) {
		t.Errorf("no red error on the terminal: %q", shown)
	}
	if !strings.Contains(shown, "unknown access") {
		t.Errorf("terminal shows %q", shown)
	}

	t.Setenv("NO_COLOR", "1")
	run([]string{"vet", dir}, term, term)
	if shown := readAvailable(t, user); strings.Contains(shown, "\x1b[") || !strings.Contains(shown, "unknown access") {
		t.Errorf("NO_COLOR: %q", shown)
	}

	t.Setenv("NO_COLOR", "")
	var out, errOut bytes.Buffer
	run([]string{"vet", dir}, &out, &errOut)
	if strings.Contains(errOut.String(), "\x1b[") {
		t.Errorf("colour into a pipe: %q", errOut.String())
	}
}

// TestColourLines: a plan's lines get Terraform's colours.
func TestColourLines(t *testing.T) {
	for line, want := range map[string]string{
		`  + container "x" {`:            green,
		`-/+ container "x" {`:            yellow,
		`  ~ container "x" {`:            yellow,
		`  - network "x"`:                red,
		`          +topic write home/a`:  green,
		`          -listener 1883`:       red,
		`Plan: 1 to add, 0 to change`:    bold,
		`mqttgen: refusing to restore`:   red,
		`home.cue:4:12: warning: anon`:   yellow,
		`  # container "x" will be made`: "",
	} {
		got := colourLine(line)
		if want == "" {
			if got != line {
				t.Errorf("%q coloured: %q", line, got)
			}
			continue
		}
		if got != want+line+reset {
			t.Errorf("%q: %q, want colour %q", line, got, want)
		}
	}
}
