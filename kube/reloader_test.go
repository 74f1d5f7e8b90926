package kube_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// kubeletSwap lays out files in dir as the kubelet does for a Secret or
// ConfigMap volume: a new hidden folder ..<stamp> with the files, a
// ..data_tmp symlink to it renamed over ..data (atomically), and each file
// a symlink through ..data.
func kubeletSwap(t *testing.T, dir, stamp string, files map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, ".."+stamp)
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ts, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(".."+stamp, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// mosquittos are the Mosquitto binaries to run: Debian's 2.0 (required;
// under CI=true its absence fails), and the 2.1 $MQTTGEN_MOSQUITTO names.
func mosquittos(t *testing.T) map[string][]string {
	out := map[string][]string{}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		out["2.0"] = []string{p}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("CI=true: mosquitto is not on PATH (apt-get install mosquitto)")
	} else {
		t.Log("mosquitto is not on PATH: the 2.0 case was not run")
	}
	if p := os.Getenv("MQTTGEN_MOSQUITTO"); p != "" {
		out["2.1"] = []string{p, "LD_LIBRARY_PATH=" + filepath.Join(filepath.Dir(filepath.Dir(p)), "lib")}
	} else {
		t.Log("MQTTGEN_MOSQUITTO is not set: the 2.1 case was not run")
	}
	if len(out) == 0 {
		t.Skip("no Mosquitto to run")
	}
	return out
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The reloader in a Mosquitto pod: the init copy gives Mosquitto plain
// 0600 files (2.1 refuses symlinks); an update (the kubelet's swap) is
// copied and Mosquitto signalled: a new user logs in, a connected client
// stays; a broken update is refused and the previous files keep serving.
func TestReloaderSignalsMosquitto(t *testing.T) {
	for release, m := range mosquittos(t) {
		t.Run(release, func(t *testing.T) {
			mounted, config := t.TempDir(), t.TempDir()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			hash := func(pw string) string {
				h, err := passwd.Hash(pw, 1000)
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			files := map[string]string{
				"mosquitto.conf": fmt.Sprintf("user root\nallow_anonymous false\npassword_file %s/passwd\nacl_file %s/acl\nlistener %d 127.0.0.1\n", config, config, port),
				"passwd":         "alice:" + hash("alice-pw") + "\n",
				"acl":            "user alice\ntopic readwrite a/#\n",
			}
			kubeletSwap(t, mounted, "2026_12_04_10_00_00.1", files)
			var log syncBuf
			r := &kube.Reloader{From: mounted, To: config, Log: &log}

			// The init container's copy.
			if changed, err := r.Sync(); err != nil || !changed {
				t.Fatalf("first copy: %v, %v", changed, err)
			}
			for name := range files {
				st, err := os.Lstat(filepath.Join(config, name))
				if err != nil {
					t.Fatal(err)
				}
				if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, want a plain file, 0600", name, st.Mode())
				}
			}

			var out syncBuf
			cmd := exec.Command(m[0], "-c", filepath.Join(config, "mosquitto.conf"))
			cmd.Env = append(os.Environ(), m[1:]...)
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					cmd.Process.Kill()
					<-exited
				}
				if t.Failed() {
					t.Logf("mosquitto's output:\n%s\nthe reloader's:\n%s", out.String(), log.String())
				}
			})
			connect := func(user, pw string) (paho.Client, error) {
				o := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + strconv.Itoa(port)).SetClientID(user + strconv.Itoa(time.Now().Nanosecond())).
					SetUsername(user).SetPassword(pw).SetAutoReconnect(false).SetConnectTimeout(3 * time.Second)
				c := paho.NewClient(o)
				tok := c.Connect()
				if !tok.WaitTimeout(5 * time.Second) {
					return nil, fmt.Errorf("no CONNACK")
				}
				if tok.Error() != nil {
					return nil, tok.Error()
				}
				t.Cleanup(func() { c.Disconnect(0) })
				return c, nil
			}
			// Wait for the broker, until alice logs in.
			var alice paho.Client
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if alice, err = connect("alice", "alice-pw"); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("alice cannot log in: %v", err)
				}
			}
			if _, err := connect("bob", "bob-pw"); err == nil {
				t.Fatal("bob logs in before the update")
			}

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx, 100*time.Millisecond) }()
			t.Cleanup(func() { cancel(); <-done })

			// The update: a new user.
			files["passwd"] += "bob:" + hash("bob-pw") + "\n"
			files["acl"] += "\nuser bob\ntopic read b/#\n"
			kubeletSwap(t, mounted, "2026_12_04_10_05_00.2", files)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if _, err = connect("bob", "bob-pw"); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("bob cannot log in after the update: %v", err)
				}
			}
			if !strings.Contains(log.String(), "sent SIGHUP to mosquitto (pid "+strconv.Itoa(cmd.Process.Pid)+")") {
				t.Errorf("the reloader does not say it signalled mosquitto:\n%s", log.String())
			}
			if !alice.IsConnectionOpen() {
				t.Error("alice was disconnected by the reload")
			}
			goodACL, err := os.ReadFile(filepath.Join(config, "acl"))
			if err != nil {
				t.Fatal(err)
			}

			// A broken update: the acl does not parse (2.0 would run with no
			// ACL at all, 2.1 would quit). Refused; the previous files serve.
			files["acl"] = "user bob\ntopic sideways b/#\n"
			kubeletSwap(t, mounted, "2026_12_04_10_10_00.3", files)
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "refusing the update"); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the broken update was not refused:\n%s", log.String())
				}
			}
			if now, _ := os.ReadFile(filepath.Join(config, "acl")); !bytes.Equal(now, goodACL) {
				t.Errorf("the acl Mosquitto reads changed to:\n%s", now)
			}
			select {
			case <-exited:
				t.Fatal("mosquitto exited")
			default:
			}
			if _, err := connect("bob", "bob-pw"); err != nil {
				t.Errorf("bob cannot log in after the broken update: %v", err)
			}
			if !alice.IsConnectionOpen() {
				t.Error("alice was disconnected")
			}
		})
	}
}
