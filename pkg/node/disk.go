package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// diskProbeInterval is how often a relay checks that its data directory
// takes writes.
const diskProbeInterval = 10 * time.Second

// probeDisk writes, syncs and removes a small file in the data directory
// now and every diskProbeInterval. While it fails the relay is not ready:
// it leaves /-/relays and stops owning objects for its group, though it
// keeps serving what it has.
func (n *Node) probeDisk(ctx context.Context) error {
	t := time.NewTicker(diskProbeInterval)
	defer t.Stop()
	for {
		err := writeProbe(n.cfg.DataDir)
		n.diskMu.Lock()
		was := n.diskErr
		n.diskErr = err
		n.diskMu.Unlock()
		switch {
		case err != nil && was == nil:
			n.log.Error().Err(err).Msg("data directory does not take writes; relay not ready")
		case err == nil && was != nil:
			n.log.Info().Msg("data directory takes writes again; relay ready")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func writeProbe(dir string) error {
	p := filepath.Join(dir, ".probe")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("disk probe: %w", err)
	}
	_, werr := f.Write([]byte("relayd\n"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(p)
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("disk probe: %w", err)
	}
	return nil
}

// diskReady is the probe's last verdict.
func (n *Node) diskReady() error {
	n.diskMu.Lock()
	defer n.diskMu.Unlock()
	return n.diskErr
}
