// Package brokerdiff holds the bundled broker's tests that need homes
// rendered by the real pipeline (workspace): the differential suite, which
// runs Debian's Mosquitto and the bundled broker (package broker) side by
// side on the same rendered files and compares what clients see; the
// conformance run of testmqtt; and the check that every kind of rendered
// mosquitto.conf parses (mosquitto/conf). They live here so that broker and
// mosquitto/conf, and their own tests, import no package of the pipeline
// (see the import rules in deps_test.go at the module root).
package brokerdiff
