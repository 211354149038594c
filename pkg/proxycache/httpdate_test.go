package proxycache

import (
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	t.Parallel()
	want := time.Date(2050, time.August, 18, 2, 1, 18, 0, time.UTC)
	for _, v := range []string{
		"Thu, 18 Aug 2050 02:01:18 GMT", "THU, 18 AUG 2050 02:01:18 gmt", "Thursday, 18-Aug-50 02:01:18 GMT",
		"Thu Aug 18 02:01:18 2050",
	} {
		if got, err := parseHTTPDate(v); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", v, got, err, want)
		}
	}
	if got, err := parseHTTPDate("Sun Nov  6 08:49:37 1994"); err != nil || !got.Equal(time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)) {
		t.Errorf("asctime with a 1-digit day: %v, %v", got, err)
	}
	for _, v := range []string{
		"", "Thu, 18  Aug  2050 02:01:18 GMT", "Thu, 18 Aug 2050 2:01:18 GMT", "Thu, 18 Aug 2050 02:01:18 UTC",
		"Thu, 18 Aug 2050 02:01:18 AEST", "Thu, 18 Aug 50 02:01:18 GMT", "Thu 18 Aug 2050 02:01:18 GMT",
		"Thu, 18-Aug-2050 02:01:18 GMT", "Thu, 18 Aug 2050 02.01.18 GMT", "Thu, 31 Feb 2050 02:01:18 GMT",
		"Thu, 18 Aug 2050 02:01:18 GMT, Thu, 18 Aug 2050 02:01:19 GMT", "Thu, 18 Aug +050 02:01:18 GMT",
		"Xyz, 18 Aug 2050 02:01:18 GMT", "Thu, 18 Aug 2050 24:01:18 GMT",
	} {
		if got, err := parseHTTPDate(v); err == nil {
			t.Errorf("%q parsed as %v, want an error", v, got)
		}
	}
}
