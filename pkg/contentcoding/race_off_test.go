//go:build !race

package contentcoding_test

const raceEnabled = false
