package proxycache

import "testing"

func TestCDNCacheControl(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"max-age=3600":                   "max-age=3600",
		"foobar, max-age=3600":           "foobar, max-age=3600",
		"private":                        "private",
		"no-store;x=1, max-age=0":        "no-store, max-age=0",
		`max-age=10, ext="a, b", tok=ab`: "max-age=10, ext, tok",
		"max-age=99999999999":            "max-age=99999999999",
	} {
		if got, ok := cdnCacheControl([]string{v}); !ok || got != want {
			t.Errorf("%q: %q %v, want %q", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "max-age=10000, &&&&&", `max-age="10000"`, "MaX-aGe=3600", "max-age =100", "max-age= 100",
		"max-age=-1", "max-age=1.5", "a,", `x="unterminated`} {
		if got, ok := cdnCacheControl([]string{v}); ok && v != "" {
			t.Errorf("%q accepted as %q", v, got)
		}
	}
}
