package version

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Local is a mosquitto binary on this host.
type Local struct {
	Path    string
	Version Version
	// PluginDir holds its acl-file and password-file plugins; empty when
	// none was found (a 2.0 build needs none).
	PluginDir string
}

// Detect asks the mosquitto binary at path for its release (`mosquitto -h`
// prints "mosquitto version 2.1.2" and exits 3) and finds its plugins:
// pluginDir when given, else <prefix>/lib or <prefix>/lib/mosquitto beside
// <prefix>/sbin/mosquitto, else Debian's multiarch folder.
func Detect(path, pluginDir string) (Local, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-h")
	prefix := filepath.Dir(filepath.Dir(path))
	// An upstream build installed under a prefix finds libmosquitto there
	// only with LD_LIBRARY_PATH; -h needs none of it but the loader does.
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+joinNonEmpty(os.Getenv("LD_LIBRARY_PATH"), filepath.Join(prefix, "lib")))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exit status 3 is its answer to -h
	v, ok := FromHelp(out.String())
	if !ok {
		return Local{}, fmt.Errorf("%s -h does not say its version: %q", path, firstLine(out.String()))
	}
	l := Local{Path: path, Version: v, PluginDir: pluginDir}
	if pluginDir != "" {
		if !hasPlugins(pluginDir) {
			return Local{}, fmt.Errorf("%s holds no mosquitto_acl_file.so and mosquitto_password_file.so", pluginDir)
		}
		return l, nil
	}
	candidates := []string{filepath.Join(prefix, "lib"), filepath.Join(prefix, "lib", "mosquitto")}
	multiarch, _ := filepath.Glob("/usr/lib/*-linux-gnu*")
	for _, d := range multiarch {
		candidates = append(candidates, d, filepath.Join(d, "mosquitto"))
	}
	candidates = append(candidates, "/usr/lib", "/usr/lib/mosquitto", "/usr/local/lib")
	for _, d := range candidates {
		if hasPlugins(d) {
			l.PluginDir = d
			break
		}
	}
	if v.Plugins() && l.PluginDir == "" {
		return Local{}, fmt.Errorf("mosquitto %s at %s: its acl-file and password-file plugins are not in %v: give --plugin-dir", v, path, candidates)
	}
	return l, nil
}

func hasPlugins(dir string) bool {
	for _, f := range []string{"mosquitto_acl_file.so", "mosquitto_password_file.so"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + ":" + b
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
