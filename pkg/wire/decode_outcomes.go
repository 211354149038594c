// Reading the outcome summary of a report (Report.Outcomes), bounded like
// the rest of DecodeReport: at most MaxOutcomeGenerations generations and
// MaxOutcomeReasons reasons of MaxOutcomeReason bytes, counts clamped.
package wire

import (
	"encoding/json"
	"fmt"
)

// outcomes reads a relay's outcome summary; null is none.
func (d *reportDecoder) outcomes() (*Outcomes, error) {
	if ok, err := d.object("outcomes"); !ok {
		return nil, err
	}
	o := &Outcomes{}
	for d.dec.More() {
		k, err := d.token()
		if err != nil {
			return nil, err
		}
		switch k {
		case "agents":
			var n int64
			n, err = d.count("outcomes.agents", maxAgents)
			o.Agents = int(n)
		case "oldest":
			o.Oldest, err = d.time("outcomes.oldest")
		case "generations":
			o.Generations, err = d.genOutcomes()
		default:
			err = d.skip(0)
		}
		if err != nil {
			return nil, err
		}
	}
	return o, d.delim('}')
}

// object reads the opening of an object: false without error for null.
func (d *reportDecoder) object(key string) (bool, error) {
	t, err := d.token()
	if err != nil || t == nil {
		return false, err
	}
	if t != json.Delim('{') {
		return false, fmt.Errorf("%w: %s: want an object", ErrBadReport, key)
	}
	return true, nil
}

// array reads the opening of an array: false without error for null.
func (d *reportDecoder) array(key string) (bool, error) {
	t, err := d.token()
	if err != nil || t == nil {
		return false, err
	}
	if t != json.Delim('[') {
		return false, fmt.Errorf("%w: %s: want an array", ErrBadReport, key)
	}
	return true, nil
}

// genOutcomes reads at most MaxOutcomeGenerations generation summaries.
func (d *reportDecoder) genOutcomes() ([]GenOutcome, error) {
	if ok, err := d.array("outcomes.generations"); !ok {
		return nil, err
	}
	var out []GenOutcome
	for d.dec.More() {
		if len(out) == MaxOutcomeGenerations {
			return nil, fmt.Errorf("%w: outcomes: more than %d generations", ErrBadReport, MaxOutcomeGenerations)
		}
		g, err := d.genOutcome()
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, d.delim(']')
}

// genOutcome reads one generation's counts and reasons.
func (d *reportDecoder) genOutcome() (GenOutcome, error) {
	var g GenOutcome
	ok, err := d.object("outcomes.generations[]")
	if !ok {
		if err == nil {
			err = fmt.Errorf("%w: outcomes.generations[]: want an object", ErrBadReport)
		}
		return g, err
	}
	for d.dec.More() {
		k, err := d.token()
		if err != nil {
			return g, err
		}
		var p *int
		switch k {
		case "generation":
			g.Generation, err = d.uint("outcomes.generation")
		case "downloaded":
			p = &g.Downloaded
		case "installed":
			p = &g.Installed
		case "failed":
			p = &g.Failed
		case "reasons":
			g.Reasons, err = d.reasons()
		default:
			err = d.skip(0)
		}
		if p != nil {
			var n int64
			n, err = d.count("outcomes."+k.(string), maxAgents)
			*p = int(n)
		}
		if err != nil {
			return g, err
		}
	}
	return g, d.delim('}')
}

// reasons reads at most MaxOutcomeReasons failure reasons.
func (d *reportDecoder) reasons() ([]Reason, error) {
	if ok, err := d.array("outcomes.reasons"); !ok {
		return nil, err
	}
	var out []Reason
	for d.dec.More() {
		if len(out) == MaxOutcomeReasons {
			return nil, fmt.Errorf("%w: outcomes: more than %d reasons", ErrBadReport, MaxOutcomeReasons)
		}
		if ok, err := d.object("outcomes.reasons[]"); !ok {
			if err == nil {
				err = fmt.Errorf("%w: outcomes.reasons[]: want an object", ErrBadReport)
			}
			return nil, err
		}
		var r Reason
		for d.dec.More() {
			k, err := d.token()
			if err != nil {
				return nil, err
			}
			switch k {
			case "reason":
				r.Reason, err = d.str("outcomes.reason", MaxOutcomeReason)
			case "count":
				var n int64
				n, err = d.count("outcomes.count", maxAgents)
				r.Count = int(n)
			default:
				err = d.skip(0)
			}
			if err != nil {
				return nil, err
			}
		}
		if err := d.delim('}'); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, d.delim(']')
}
