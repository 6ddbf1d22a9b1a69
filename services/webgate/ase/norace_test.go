//go:build !race

package ase

// raceEnabled is true when the race detector is on: timing tests use smaller inputs.
const raceEnabled = false
