//go:build !race

package registry_test

// raceEnabled reports whether the race detector is on; it adds allocations.
const raceEnabled = false
