package engine

import (
	"strconv"
	"strings"
)

// Labels of docker compose, so that `docker compose ps` and `logs` show a
// project's containers and compose treats its networks and volumes as its
// own.
const (
	LabelProject    = "com.docker.compose.project"
	LabelService    = "com.docker.compose.service"
	LabelNumber     = "com.docker.compose.container-number"
	LabelOneoff     = "com.docker.compose.oneoff"
	LabelVersion    = "com.docker.compose.version"
	LabelConfigHash = "com.docker.compose.config-hash"
	LabelWorkingDir = "com.docker.compose.project.working_dir"
	LabelFiles      = "com.docker.compose.project.config_files"
	LabelNetwork    = "com.docker.compose.network"
	LabelVolume     = "com.docker.compose.volume"
	// ComposeVersion is the compose version the labels claim; compose
	// reads it only for display.
	ComposeVersion = "2.0.0"
)

// Labels of mqttgen's own on what deploy creates. Those the rendered
// compose file carries (managed, role, broker engine) are the generators'.
const (
	// LabelSpecHash is the SHA-256 of the container's spec: a container
	// whose label differs from the desired spec's hash is replaced.
	LabelSpecHash = "io.mqttgen.spec-hash"
	// LabelSpec is the spec itself (JSON), to show what changed.
	LabelSpec = "io.mqttgen.spec"
	// LabelConfigDir is where the service's rendered files live in the
	// container.
	LabelConfigDir = "io.mqttgen.config-dir"
	// LabelBinaryDigest is the SHA-256 of the mqttgen binary an image of
	// the bundled broker holds.
	LabelBinaryDigest = "io.mqttgen.binary-sha256"
)

// ContainerName is compose's name of a service's first container.
func ContainerName(project, service string) string { return project + "-" + service + "-1" }

// ResourceName is compose's name of a project's network or volume key
// that does not name itself.
func ResourceName(project, key string) string { return project + "_" + key }

// ContainerNumber reads compose's container number of a name p-s-N.
func ContainerNumber(name string) int {
	i := strings.LastIndexByte(name, '-')
	n, _ := strconv.Atoi(name[i+1:])
	return n
}

// ShortID is an engine id (container, image, network) as docker shows it:
// its first 12 hex digits.
func ShortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
