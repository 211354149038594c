package ui

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/relayd/relayd/internal/proctest"
	"github.com/relayd/relayd/pkg/admin"
	"github.com/relayd/relayd/pkg/admindoc"
)

func countsRow(c admindoc.ComplianceCounts, m map[string]string) map[string]string {
	m["agents"] = strconv.Itoa(c.Agents)
	m["on_target"] = strconv.Itoa(c.OnTarget)
	m["behind"] = strconv.Itoa(c.Behind)
	m["failed"] = strconv.Itoa(c.Failed)
	m["not_reporting"] = strconv.Itoa(c.NotReporting)
	return m
}

func openText(v uint64) string {
	if v == 0 {
		return "not yet"
	}
	return strconv.FormatUint(v, 10)
}

// complianceRows is /v1/compliance as the page's two tables must show it.
func complianceRows(d admin.Compliance) (rings, groups []map[string]string) {
	for _, r := range d.Rings {
		rings = append(rings, countsRow(r.ComplianceCounts, map[string]string{"ring": r.Name, "open": openText(r.Open), "groups": strconv.Itoa(r.Groups)}))
	}
	for _, g := range d.Groups {
		groups = append(groups, countsRow(g.ComplianceCounts, map[string]string{"group": g.Name, "ring": g.Ring,
			"target": strconv.FormatUint(g.Target, 10), "relays": strconv.Itoa(g.Relays)}))
	}
	return rings, groups
}

// checkCompliance waits until the page's compliance tables equal
// /v1/compliance, which lists the groups and agents in all.
func checkCompliance(t *testing.T, ctx context.Context, adminURL string, agents int, groups ...string) {
	t.Helper()
	proctest.Eventually(t, 30*time.Second, "the page's compliance equal to /v1/compliance", func() error {
		var doc admin.Compliance
		if err := getJSON(adminURL+"/v1/compliance", "", &doc); err != nil {
			return err
		}
		for _, g := range groups {
			if !slices.ContainsFunc(doc.Groups, func(x admindoc.ComplianceGroup) bool { return x.Name == g }) {
				return fmt.Errorf("/v1/compliance has no group %s: %+v", g, doc.Groups)
			}
		}
		if doc.Total.Agents != agents {
			return fmt.Errorf("/v1/compliance counts %d agents, want %d", doc.Total.Agents, agents)
		}
		wantRings, wantGroups := complianceRows(doc)
		rawRings, err1 := eval[[]map[string]string](ctx, fmt.Sprintf(rowsJS, "#compliance-rings"))
		rawGroups, err2 := eval[[]map[string]string](ctx, fmt.Sprintf(rowsJS, "#compliance-groups"))
		onTarget, err3 := text(ctx, "sum-ontarget")
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		if got := only(rawRings, wantRings); !reflect.DeepEqual(got, wantRings) {
			return fmt.Errorf("page rings\n%v\nwant (/v1/compliance)\n%v", got, wantRings)
		}
		if got := only(rawGroups, wantGroups); !reflect.DeepEqual(got, wantGroups) {
			return fmt.Errorf("page groups\n%v\nwant (/v1/compliance)\n%v", got, wantGroups)
		}
		if want := fmt.Sprintf("%d / %d", doc.Total.OnTarget, doc.Total.Agents); onTarget != want {
			return fmt.Errorf("page on target %q, want %q", onTarget, want)
		}
		return nil
	})
}
