package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
)

// scriptEngine is the Docker engine of the scripts that need one ([docker])
// and the Mosquitto image they deploy, built once per run.
var scriptEngine struct {
	once  sync.Once
	cli   *client.Client
	err   error
	tag   string
	built bool
}

func dockerEngine() (*client.Client, error) {
	scriptEngine.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if scriptEngine.cli, scriptEngine.err = engine.Connect(ctx); scriptEngine.err != nil {
			return
		}
		scriptEngine.tag = deploytest.Tag("script-mosquitto")
		if scriptEngine.err = deploytest.MosquittoImage(ctx, scriptEngine.cli, scriptEngine.tag); scriptEngine.err == nil {
			scriptEngine.built = true
		}
	})
	return scriptEngine.cli, scriptEngine.err
}

// removeScriptImage removes the image the scripts deployed, after them.
func removeScriptImage() {
	if scriptEngine.built {
		deploytest.RemoveImage(context.Background(), scriptEngine.cli, scriptEngine.tag)
	}
}

// scriptConditions are the conditions of the scripts besides root:
// docker (a Docker engine answers; under CI=true a missing one fails the
// script instead of skipping it) and static (the test binary can be the
// bundled broker's, as `make build` makes mqttgen).
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "docker":
		if _, err := dockerEngine(); err != nil {
			if os.Getenv("CI") == "true" {
				return false, fmt.Errorf("CI=true and no Docker engine (or no test image): %v", err)
			}
			return false, nil
		}
		return true, nil
	case "static":
		exe, err := os.Executable()
		if err != nil {
			return false, err
		}
		_, err = deploy.InspectBinary(exe)
		return err == nil, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// code N cmd args...: runs cmd like exec and checks its exit status is N.
	"code": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: code N command [args...]")
		}
		want, err := strconv.Atoi(args[0])
		if err != nil {
			ts.Fatalf("code: %v", err)
		}
		got := 0
		if err := ts.Exec(args[1], args[2:]...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				ts.Fatalf("%s: %v", args[1], err)
			}
			got = ee.ExitCode()
		}
		if got != want {
			ts.Fatalf("%s: exit status %d, want %d", strings.Join(args[1:], " "), got, want)
		}
	},
	// engine-home [-lamp|-bundled] FILE writes a home on the script's
	// engine: the test image, a free port, a project of the script's own,
	// whose containers, networks and volumes go when the script ends.
	"engine-home": func(ts *testscript.TestScript, neg bool, args []string) {
		variant := ""
		if len(args) == 2 {
			variant, args = args[0], args[1:]
		}
		if neg || len(args) != 1 {
			ts.Fatalf("usage: engine-home [-lamp|-bundled] file")
		}
		cli, err := dockerEngine()
		ts.Check(err)
		project := ts.Getenv("ENGINE_PROJECT")
		if project == "" {
			project = fmt.Sprintf("mqttgen-script-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
			ts.Setenv("ENGINE_PROJECT", project)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			ts.Check(err)
			ts.Setenv("ENGINE_PORT", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
			l.Close()
			ts.Defer(func() { deploytest.RemoveProject(cli, project) })
		}
		broker := fmt.Sprintf("broker: image: %q", scriptEngine.tag)
		devices := `devices: sensor: publishes: ["temperature"]`
		switch variant {
		case "":
		case "-lamp":
			devices = `devices: {sensor: publishes: ["temperature"], lamp: subscribes: ["set"]}`
		case "-bundled":
			broker = `broker: engine: "mqttgen"`
		default:
			ts.Fatalf("engine-home: unknown variant %s", variant)
		}
		home := fmt.Sprintf("package home\n%s\nlisteners: mqtt: port: %s\nusers: admin: acl: [\"readwrite #\"]\n%s\ndeploy: project: %q\n",
			broker, ts.Getenv("ENGINE_PORT"), devices, project)
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(home), 0o644))
	},
	// json PATH WANT checks a value of the JSON document on stdout: PATH is
	// dotted keys and indexes, "len" the length of a list.
	"json": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: json path want")
		}
		var v any
		ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &v))
		for _, k := range strings.Split(args[0], ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				if k == "len" {
					v = float64(len(x))
					continue
				}
				i, err := strconv.Atoi(k)
				if err != nil || i >= len(x) {
					ts.Fatalf("json: %s: no element %s", args[0], k)
				}
				v = x[i]
			default:
				ts.Fatalf("json: %s: %s is not in a map or list", args[0], k)
			}
		}
		if got := fmt.Sprint(v); (got == args[1]) == neg {
			ts.Fatalf("json %s = %s, want %s", args[0], got, args[1])
		}
	},
	// json-lines checks every line of stdout is a JSON document.
	"json-lines": func(ts *testscript.TestScript, neg bool, args []string) {
		for _, line := range strings.Split(strings.TrimSpace(ts.ReadFile("stdout")), "\n") {
			if !json.Valid([]byte(line)) {
				ts.Fatalf("a line that is not JSON: %s", line)
			}
		}
	},
}
