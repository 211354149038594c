//go:build !linux

package node

// raiseNoFile does nothing here: the budget is planned from a nominal
// limit (fallbackNoFile) and the system's own limit applies.
func raiseNoFile() (now, before uint64, err error) { return fallbackNoFile, fallbackNoFile, nil }
