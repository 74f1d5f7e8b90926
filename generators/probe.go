package generators

import (
	"fmt"
	"path"
	"strings"

	"github.com/mqttgen/mqttgen/schema"
)

// ProbeLoginPath is the healthcheck's login: a mosquitto_sub options file
// (`-u USER` and `-P PASSWORD` lines), which mosquitto_sub reads from
// $XDG_CONFIG_HOME/mosquitto_sub and `mqttgen broker --probe-login` reads
// too. It is a file of the config folder, mode 0600, so deploy copies it
// into the container owned by the broker's user like passwd: the password
// is never in the container's environment, labels, command or
// healthcheck, nor in a plan (shown redacted) or an archive (omitted).
const ProbeLoginPath = "config/healthcheck/mosquitto_sub"

// ProbeLoginName is the base name of ProbeLoginPath, which mosquitto_sub
// requires.
const ProbeLoginName = "mosquitto_sub"

// probe says the inputs hold the healthcheck's login.
func (in Inputs) probe() bool { return in.ProbePassword != "" && in.ProbeHash != "" }

// ProbeLogin renders ProbeLoginPath.
func ProbeLogin(in Inputs) (File, error) {
	// mosquitto_sub takes the rest of the line after "-P " as the password.
	if err := CheckEnvValue(in.ProbePassword); err != nil || strings.Contains(in.ProbePassword, " ") {
		return File{}, fmt.Errorf("%s: the healthcheck's password cannot be carried by an options file", ProbeLoginPath)
	}
	return File{Path: ProbeLoginPath, Mode: secretMode, Data: []byte("-u " + schema.ProbeUser + "\n-P " + in.ProbePassword + "\n")}, nil
}

// probeLoginIn is where the container finds ProbeLoginPath, "" when the
// home has no probe login.
func probeLoginIn(files []File) string {
	for _, f := range files {
		if f.Path == ProbeLoginPath {
			return path.Join(ContainerLayout.ConfigDir, strings.TrimPrefix(f.Path, "config/"))
		}
	}
	return ""
}
