//go:build race

package contentcoding_test

// raceEnabled: the race detector slows encoding some twentyfold, so the
// tests then use prefixes of the large real files.
const raceEnabled = true
