//go:build race

package lsm

// raceEnabled is true when the tests run with -race.
const raceEnabled = true
