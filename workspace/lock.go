package workspace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockName is the file in the state directory that names the command
// holding the home's lock.
const LockName = "mqttgen.lock"

// LockDir makes this process the only mqttgen command working on the home
// in folder dir, whose state directory is stateDir: its state (passwords,
// certificates), its rendered files and its deployment. Two applies, or a
// scheduled backup during a restore, would each undo the other's work, so
// LockDir does not wait: it fails at once, naming the command that holds
// the lock. The lock is the operating system's (flock) on the folder
// itself, so it creates nothing (a command refused for bad input leaves no
// trace) and a command that dies releases it. Where the state directory
// exists, the holder writes its name, process and start into LockName
// there, for the message of the command it refuses.
func LockDir(dir, stateDir, command string) (release func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	info := filepath.Join(stateDir, LockName)
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		who := "another mqttgen command"
		if f, err := os.Open(info); err == nil {
			b, _ := io.ReadAll(io.LimitReader(f, 200))
			f.Close()
			if s := strings.TrimSpace(string(b)); s != "" {
				who = s
			}
		}
		return nil, fmt.Errorf("%s is working on this home (%s): wait for it to finish", who, dir)
	}
	var f *os.File
	if st, err := os.Stat(stateDir); err == nil && st.IsDir() {
		if f, err = os.OpenFile(info, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
			fmt.Fprintf(f, "mqttgen %s (pid %d, since %s)\n", command, os.Getpid(), time.Now().Format("15:04:05"))
		}
	}
	return func() {
		if f != nil {
			f.Truncate(0)
			f.Close()
		}
		d.Close()
	}, nil
}
