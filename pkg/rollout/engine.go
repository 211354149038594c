package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/relayd/relayd/pkg/admindoc"
	"github.com/relayd/relayd/pkg/wire"
)

// Status is the /v1/rollout document (admindoc.Rollout).
type Status = admindoc.Rollout

var (
	bucket   = []byte("rollout")
	stateKey = []byte("state")
)

// Change is what one call of the engine did: the decisions, and the new
// gates to sign when they changed (nil: unchanged).
type Change struct {
	Decisions []Decision
	Gates     *wire.Gates
}

// Engine is the rollout's state machine with its state persisted. Time
// comes in as an argument (the caller's injected clock), outcomes through
// Inputs; it is safe for concurrent use.
type Engine struct {
	mu   sync.Mutex
	plan *Plan
	st   State
	db   *bolt.DB // nil: the state lives in memory only
	// saved is the state as last saved (a tick that changes nothing
	// writes nothing).
	saved []byte
	// last is what each ring's agents reported at the last tick (for
	// Status; not persisted).
	last []Counts
}

// Open returns the engine of plan with the state saved in db (nil: in
// memory only), fitted to the plan; the Change says what the fitting
// decided (a plan changed since the last run).
func Open(plan *Plan, db *bolt.DB) (*Engine, Change, error) {
	e := &Engine{plan: plan, db: db, last: make([]Counts, len(plan.Rings))}
	if db != nil {
		err := db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return nil
			}
			if v := b.Get(stateKey); v != nil {
				e.saved = append([]byte(nil), v...)
				return json.Unmarshal(v, &e.st)
			}
			return nil
		})
		if err != nil {
			return nil, Change{}, fmt.Errorf("rollout: load the state: %w", err)
		}
	}
	ds := e.st.reconcile(plan)
	ch, err := e.commit(e.st, ds)
	if err != nil {
		return nil, Change{}, err
	}
	return e, ch, nil
}

// commit saves next as the state when the decisions changed it, and
// returns the change.
func (e *Engine) commit(next State, ds []Decision) (Change, error) {
	b, err := json.Marshal(next)
	if err != nil {
		return Change{}, fmt.Errorf("rollout: encode the state: %w", err)
	}
	if e.db != nil && string(b) != string(e.saved) {
		err = e.db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return bk.Put(stateKey, b)
		})
		if err != nil {
			return Change{}, fmt.Errorf("rollout: save the state: %w", err)
		}
	}
	e.st, e.saved = next, b
	if len(ds) == 0 {
		return Change{}, nil
	}
	g := e.st.gates(e.plan)
	return Change{Decisions: ds, Gates: &g}, nil
}

// apply runs a transition on a copy of the state and commits it: a
// failed save leaves the state as it was.
func (e *Engine) apply(f func(s *State) ([]Decision, error)) (Change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := e.st.clone()
	ds, err := f(&next)
	if err != nil {
		return Change{}, err
	}
	return e.commit(next, ds)
}

// Gates returns the gates of the current state (Newest.Version 0: no
// generation seen yet).
func (e *Engine) Gates() wire.Gates {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.gates(e.plan)
}

// State returns a copy of the current state.
func (e *Engine) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.clone()
}

// Started tells the engine the generation the tree holds when the node
// starts: an engine that never saw one takes it as installed in every
// ring (a plan added to a running tree stops no agent); otherwise it is
// NewGeneration.
func (e *Engine) Started(now time.Time, pin wire.Pin) (Change, error) {
	return e.apply(func(s *State) ([]Decision, error) {
		if s.Newest.Version == 0 {
			return s.adopt(pin, now), nil
		}
		return s.newGeneration(pin, now)
	})
}

// NewGeneration records a newly published generation: ring 0 opens at
// once (unless halted), the other rings keep theirs.
func (e *Engine) NewGeneration(now time.Time, pin wire.Pin) (Change, error) {
	return e.apply(func(s *State) ([]Decision, error) { return s.newGeneration(pin, now) })
}

// Tick weighs the rings' outcomes: failures above a ring's max_failures
// halt the rollout; a ring that met its gate for its soak opens the next.
func (e *Engine) Tick(now time.Time, in Inputs) (Change, error) {
	return e.apply(func(s *State) ([]Decision, error) {
		e.observe(s, in)
		return s.tick(e.plan, now, in), nil
	})
}

// observe keeps what each ring reported of the generation it is open at.
func (e *Engine) observe(s *State, in Inputs) {
	for i, r := range s.Rings {
		if r.Open.Version == 0 {
			e.last[i] = Counts{}
			continue
		}
		e.last[i] = in.Ring(i, r.Open.Version)
		e.last[i].Generation = r.Open.Version
	}
}

// Promote opens ring name ("": the next one) and every ring before it at
// the newest generation. ErrHalted when halted, ErrUnknownRing.
func (e *Engine) Promote(now time.Time, name string) (Change, error) {
	return e.apply(func(s *State) ([]Decision, error) { return s.promote(name, now) })
}

// Halt stops the rollout: no ring opens until Resume.
func (e *Engine) Halt(reason string) (Change, error) {
	return e.apply(func(s *State) ([]Decision, error) { return s.halt(reason) })
}

// Resume lifts a halt; the failures reported so far are acknowledged.
func (e *Engine) Resume(in Inputs) (Change, error) {
	return e.apply(func(s *State) ([]Decision, error) { return s.resume(in), nil })
}

// Status returns the /v1/rollout document at now (Signed is the
// caller's to fill).
func (e *Engine) Status(now time.Time) Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.st.gates(e.plan)
	st := Status{Plan: e.plan.Name, Gates: &g, Halted: e.st.Halted, Reason: e.st.Reason, Rings: make([]admindoc.RolloutRing, len(e.st.Rings))}
	for i, r := range e.st.Rings {
		rp := e.plan.Rings[i]
		c := e.last[i]
		v := judge(rp.Gate, c, r.Acked)
		rs := admindoc.RolloutRing{Name: r.Name, Groups: rp.Groups, Open: r.Open.Version, Since: r.Since, Soak: rp.Soak.String(),
			Gate: rp.Gate, Counts: c, Met: v.met && r.Open.Version > 0, MetSince: r.MetSince}
		switch {
		case r.Open.Version == 0:
			rs.Why = "not open at any generation yet"
		case r.Open.Version < e.st.Newest.Version:
			rs.Why = fmt.Sprintf("waits for the ring before it to meet its gate at generation %d", e.st.Newest.Version)
		default:
			rs.Why = v.why
		}
		if !r.MetSince.IsZero() && i+1 < len(e.st.Rings) && e.st.Rings[i+1].Open.Version < e.st.Newest.Version && !e.st.Halted {
			rs.NextOpens = r.MetSince.Add(rp.Soak)
		}
		st.Rings[i] = rs
	}
	return st
}

// Ring returns the index of the plan's ring called name.
func (e *Engine) Ring(name string) (int, error) {
	for i, r := range e.plan.Rings {
		if r.Name == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: %q", ErrUnknownRing, name)
}

// IsActionError reports whether err is a refusal of a manual action
// (halted, unknown ring, nothing published, a long reason) rather than a
// failure of the engine.
func IsActionError(err error) bool {
	return errors.Is(err, ErrHalted) || errors.Is(err, ErrUnknownRing) || errors.Is(err, ErrNoGeneration) || errors.Is(err, ErrBadReason)
}
