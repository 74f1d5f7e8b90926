// Package integration proves that the files mqttgen renders work on the real
// Mosquitto broker with real MQTT clients: it renders homes through the same
// pipeline as `mqttgen render --local` (workspace.Open, Home.Render,
// workspace.Write), starts the system's mosquitto on them and checks, with
// paho clients over MQTT 3.1.1, MQTT 5, TLS and websockets, that
// authentication, every acl line, TLS, persistence and bridges behave as
// home.cue declares.
//
// Run it with `go test ./integration/`. It needs mosquitto (Debian's
// mosquitto 2.0.11 here) on PATH; without it the tests skip, except under
// CI=true, where they fail.
package integration
