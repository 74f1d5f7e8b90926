package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/workspace"
)

const killAtEnv = "MQTTGEN_TEST_KILL_AT"

// interruptHome is a deployed home on the real engine whose port the tests
// change, so that each apply replaces the broker.
type interruptHome struct {
	t       *testing.T
	dir     string
	project string
	tag     string
	port    int
}

func newInterruptHome(t *testing.T, name string) *interruptHome {
	cli := deploytest.Engine(t)
	ctx := context.Background()
	tag := deploytest.MosquittoTag(name)
	if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
		t.Fatal(err)
	}
	h := &interruptHome{t: t, dir: t.TempDir(), project: fmt.Sprintf("mqttgen-%s-%d", name, os.Getpid()), tag: tag}
	t.Cleanup(func() { deploytest.RemoveImage(ctx, cli, tag) })
	deploytest.CleanupProject(t, cli, h.project)
	h.write(deploytest.FreePort(t))
	if code, out := mqttgen(t, "", "apply", "--auto-approve", h.dir); code != 0 {
		t.Fatalf("first apply: %s", out)
	}
	return h
}

func (h *interruptHome) write(port int) {
	h.port = port
	home := fmt.Sprintf(`package home
broker: image: %q
listeners: mqtt: port: %d
users: admin: acl: ["readwrite #"]
persistence: autosave_interval: "1h"
logging: destinations: ["stderr"]
deploy: project: %q
`, h.tag, port, h.project)
	if err := os.WriteFile(filepath.Join(h.dir, "home.cue"), []byte(home), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *interruptHome) client(id string, clean bool, on ...mqtt.MessageHandler) mqtt.Client {
	h.t.Helper()
	ws, err := workspace.Open(h.dir, "")
	if err != nil {
		h.t.Fatal(err)
	}
	pw, _ := ws.Secrets.Generated("admin")
	opts := mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", h.port)).SetClientID(id).
		SetUsername("admin").SetPassword(pw).SetCleanSession(clean).SetAutoReconnect(false).SetConnectTimeout(3 * time.Second)
	if len(on) > 0 {
		// Before CONNECT: a session's queued messages arrive at once.
		opts.SetDefaultPublishHandler(on[0])
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		h.t.Fatalf("login on port %d: %v", h.port, tok.Error())
	}
	return c
}

// seed leaves a retained message, and a persistent session with a queued
// QoS 1 message, in the broker: what a replacement must not lose.
func (h *interruptHome) seed(tag string) {
	h.t.Helper()
	sub := h.client("sess-"+tag, false)
	sub.Subscribe("queued/"+tag, 1, nil).Wait()
	sub.Disconnect(100)
	pub := h.client("pub-"+tag, true)
	pub.Publish("retained/"+tag, 1, true, "kept").Wait()
	pub.Publish("queued/"+tag, 1, false, "waiting").Wait()
	pub.Disconnect(100)
}

// check proves the broker serves on the port home.cue has and still holds
// what seed left.
func (h *interruptHome) check(tag string) {
	h.t.Helper()
	got := make(chan string, 4)
	c := h.client("sess-"+tag, false, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + "=" + string(m.Payload()) })
	defer c.Disconnect(100)
	c.Subscribe("retained/"+tag, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + "=" + string(m.Payload()) }).Wait()
	want := map[string]bool{"retained/" + tag + "=kept": false, "queued/" + tag + "=waiting": false}
	deadline := time.After(5 * time.Second)
	for n := 0; n < len(want); {
		select {
		case m := <-got:
			if seen, ok := want[m]; ok && !seen {
				want[m] = true
				n++
			}
		case <-deadline:
			h.t.Fatalf("lost after the interruption: %v", want)
		}
	}
}

// TestApplyInterrupted: SIGINT (and SIGTERM) at every step of a
// replacement and of an update: the step in progress is finished or undone,
// one line says the broker's state, the exit status is non-zero, the broker
// serves with its retained messages, sessions and queued messages, and the
// next plan shows what is left; the apply after it converges. A second
// SIGINT while the broker is restored is refused with a line saying why.
func TestApplyInterrupted(t *testing.T) {
	h := newInterruptHome(t, "interrupt")
	defer func() { applyCheckpoint = nil }()
	for i, c := range []struct {
		step     string
		finished bool // the new broker served before the interrupt
		sig      syscall.Signal
	}{
		{"backing-up", false, syscall.SIGINT},
		{"stopping", false, syscall.SIGINT},
		{"renaming", false, syscall.SIGTERM},
		{"creating", false, syscall.SIGINT},
		{"starting", false, syscall.SIGINT},
		{"removing-previous", true, syscall.SIGINT},
	} {
		t.Run(c.step, func(t *testing.T) {
			h.t = t
			tag := fmt.Sprint(i)
			h.seed(tag)
			oldPort, newPort := h.port, deploytest.FreePort(t)
			h.write(newPort)
			var seen atomic.Bool
			applyCheckpoint = func(op deploy.Op, step string) {
				if step != c.step || seen.Swap(true) {
					return
				}
				syscall.Kill(os.Getpid(), c.sig)
				if c.step == "stopping" {
					// A second one, while the broker is being restored.
					time.Sleep(100 * time.Millisecond)
					syscall.Kill(os.Getpid(), syscall.SIGINT)
				}
				time.Sleep(300 * time.Millisecond) // the signal reaches apply
			}
			code, out := mqttgen(t, "", "apply", "--auto-approve", h.dir)
			applyCheckpoint = nil
			want := 128 + int(c.sig)
			if code != want {
				t.Fatalf("exit %d, want %d\n%s", code, want, out)
			}
			last := strings.Split(strings.TrimSpace(out), "\n")
			line := last[len(last)-1]
			if !strings.HasPrefix(line, "mqttgen: apply interrupted by ") || !strings.Contains(line, "now the broker "+h.project+"-broker-1 is running") {
				t.Errorf("the last line does not say the broker's state: %q\n%s", line, out)
			}
			if c.step == "stopping" && !strings.Contains(out, "still restoring the broker, please wait") {
				t.Errorf("the second SIGINT was not refused:\n%s", out)
			}
			planCode, planOut := mqttgen(t, "", "plan", "--detailed-exitcode", h.dir)
			if c.finished {
				if planCode != 0 {
					t.Errorf("after an interruption at %s the replacement is finished, but plan: %d\n%s", c.step, planCode, planOut)
				}
			} else {
				h.port = oldPort // undone: the broker serves the previous port
				h.client("serves-"+tag, true).Disconnect(100)
				if planCode != 2 || !strings.Contains(planOut, "-/+ container") {
					t.Errorf("plan does not show the replacement left: %d\n%s", planCode, planOut)
				}
				if code, out := mqttgen(t, "", "apply", "--auto-approve", h.dir); code != 0 {
					t.Fatalf("apply after the interruption: %s", out)
				}
				h.port = newPort
			}
			h.check(tag)
			if code, out := mqttgen(t, "", "plan", "--detailed-exitcode", h.dir); code != 0 {
				t.Errorf("not converged: %s", out)
			}
			if n := strings.Count(mustPs(t, h.project), "\n"); n != 1 {
				t.Errorf("containers of the project: %d, want 1 (no -previous left)\n%s", n, mustPs(t, h.project))
			}
		})
	}
}

// TestApplyInterruptedUpdate: SIGINT before the files are copied, or with
// them copied but not yet read by the broker: the previous files serve
// again, plan still shows the update, and the next apply does it.
func TestApplyInterruptedUpdate(t *testing.T) {
	h := newInterruptHome(t, "interrupt-update")
	defer func() { applyCheckpoint = nil }()
	base, err := os.ReadFile(filepath.Join(h.dir, "home.cue"))
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []string{"copying", "reloading"} {
		t.Run(step, func(t *testing.T) {
			h.t = t
			tag := fmt.Sprint("u", i)
			h.seed(tag)
			device := fmt.Sprintf("devices: \"d%d\": publishes: [\"state\"]\n", i)
			os.WriteFile(filepath.Join(h.dir, "home.cue"), append(append([]byte{}, base...), device...), 0o644)
			var seen atomic.Bool
			applyCheckpoint = func(op deploy.Op, s string) {
				if s == step && !seen.Swap(true) {
					syscall.Kill(os.Getpid(), syscall.SIGINT)
					time.Sleep(300 * time.Millisecond)
				}
			}
			code, out := mqttgen(t, "", "apply", "--auto-approve", h.dir)
			applyCheckpoint = nil
			if code != 130 || !strings.Contains(out, "it was undone; now the broker "+h.project+"-broker-1 is running") {
				t.Fatalf("exit %d\n%s", code, out)
			}
			if code, out := mqttgen(t, "", "plan", "--detailed-exitcode", h.dir); code != 2 || !strings.Contains(out, "~ container") {
				t.Errorf("plan does not show the update left: %d\n%s", code, out)
			}
			if code, out := mqttgen(t, "", "apply", "--auto-approve", h.dir); code != 0 {
				t.Fatalf("apply after the interruption: %s", out)
			}
			h.check(tag)
			base, _ = os.ReadFile(filepath.Join(h.dir, "home.cue"))
		})
	}
}

func mustPs(t *testing.T, project string) string {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=com.docker.compose.project="+project, "--format", "{{.Names}} {{.State}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v %s", err, out)
	}
	return string(out)
}

// TestApplyKilled: mqttgen killed with SIGKILL at every step of a
// replacement (it cannot undo anything then): the next plan shows exactly
// what is left, with why, and the next apply converges with nothing lost:
// the retained message, the persistent session and its queued message.
func TestApplyKilled(t *testing.T) {
	h := newInterruptHome(t, "killed")
	for i, c := range []struct {
		step  string
		wants []string // in the next plan
	}{
		{"stopping", []string{"-/+ container", "ports"}},
		{"renaming", []string{"-/+ container", "not running"}},
		{"creating", []string{"-/+ container", "set aside", "killed before"}},
		{"starting", []string{"- container \"" + h.project + "-broker-1-previous\"", "set aside", "-/+ container"}},
		{"removing-previous", []string{"- container \"" + h.project + "-broker-1-previous\"", "Plan: 0 to add, 0 to change, 1 to destroy."}},
	} {
		t.Run(c.step, func(t *testing.T) {
			h.t = t
			tag := fmt.Sprint("k", i)
			h.seed(tag)
			newPort := deploytest.FreePort(t)
			h.write(newPort)
			cmd := exec.Command(os.Args[0], "apply", "--auto-approve", h.dir)
			cmd.Env = append(os.Environ(), killAtEnv+"="+c.step)
			out, err := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("apply was not killed at %s: %v\n%s", c.step, err, out)
			}
			code, plan := mqttgen(t, "", "plan", "--detailed-exitcode", h.dir)
			if code != 2 {
				t.Errorf("plan after the kill: exit %d, want 2\n%s", code, plan)
			}
			for _, w := range c.wants {
				if !strings.Contains(plan, w) {
					t.Errorf("plan after a kill at %s lacks %q:\n%s", c.step, w, plan)
				}
			}
			if code, out := mqttgen(t, "", "apply", "--auto-approve", h.dir); code != 0 {
				t.Fatalf("apply after the kill: %s", out)
			}
			h.check(tag)
			if code, out := mqttgen(t, "", "plan", "--detailed-exitcode", h.dir); code != 0 {
				t.Errorf("not converged: %s", out)
			}
			if ps := mustPs(t, h.project); strings.Count(ps, "\n") != 1 {
				t.Errorf("containers of the project after converging:\n%s", ps)
			}
		})
	}
}
