//go:build race

package broker

// raceEnabled is set when the tests run under the race detector.
const raceEnabled = true
