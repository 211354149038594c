package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeReportOutcomes(t *testing.T) {
	t.Parallel()
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := Report{Group: "hq", Node: "hq-1", Sent: sent, Outcomes: &Outcomes{Agents: 9, Oldest: sent.Add(-time.Hour),
		Generations: []GenOutcome{{Generation: 7, Downloaded: 1, Installed: 5, Failed: 2,
			Reasons: []Reason{{Reason: "exit 1: disk full", Count: 2}}}, {Generation: 6, Installed: 1}}},
		Children: []Report{{Group: "b", Node: "b-1", Sent: sent, Outcomes: &Outcomes{Agents: 1}}}}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeReport(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err = DecodeReport(strings.NewReader(`{"group":"g","node":"n","outcomes":{"agents":-3,"future":[1],"generations":[{"generation":1,"failed":99999999999999999999999,"installed":99999999999}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if o := got.Outcomes; o.Agents != 0 || o.Generations[0].Installed != maxAgents || o.Generations[0].Failed != maxAgents {
		t.Fatalf("clamped: %+v", o)
	}
}

func TestDecodeReportOutcomesBounds(t *testing.T) {
	t.Parallel()
	gens := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf(`{"generation":%d}`, i+1))
		}
		return strings.Join(s, ",")
	}
	reasons := func(n int, r string) string {
		var s []string
		for range n {
			s = append(s, fmt.Sprintf(`{"reason":%q,"count":1}`, r))
		}
		return strings.Join(s, ",")
	}
	for name, tc := range map[string]struct {
		outcomes string
		ok       bool
	}{
		"4 generations":       {`{"generations":[` + gens(4) + `]}`, true},
		"5 generations":       {`{"generations":[` + gens(5) + `]}`, false},
		"5 reasons":           {`{"generations":[{"generation":1,"reasons":[` + reasons(5, "x") + `]}]}`, true},
		"6 reasons":           {`{"generations":[{"generation":1,"reasons":[` + reasons(6, "x") + `]}]}`, false},
		"reason 200 bytes":    {`{"generations":[{"reasons":[` + reasons(1, strings.Repeat("r", 200)) + `]}]}`, true},
		"reason 201 bytes":    {`{"generations":[{"reasons":[` + reasons(1, strings.Repeat("r", 201)) + `]}]}`, false},
		"reason escape":       {`{"generations":[{"reasons":[{"reason":"\u001b[31m"}]}]}`, false},
		"not an object":       {`[1]`, false},
		"generation number":   {`{"generations":[1]}`, false},
		"null":                {`null`, true},
		"negative generation": {`{"generations":[{"generation":-1}]}`, false},
	} {
		_, err := DecodeReport(strings.NewReader(`{"group":"g","node":"n","outcomes":` + tc.outcomes + `}`))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadReport)) {
			t.Errorf("%s: err %v, want ok=%v", name, err, tc.ok)
		}
	}
	big := Report{Group: "g", Node: "n", Outcomes: &Outcomes{Generations: make([]GenOutcome, 5)}}
	if err := big.Validate(); !errors.Is(err, ErrBadReport) {
		t.Fatalf("Validate of 5 generations: %v", err)
	}
}
