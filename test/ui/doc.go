// Package ui holds the dashboard's browser tests: real relayd processes,
// the page at /ui/ on their admin port loaded in headless Chromium
// (Debian's chromium, driven with chromedp), and what the page shows
// checked against the admin API the test reads itself.
//
// The tests skip, saying so, when no Chromium binary is found (.ci/run
// installs Debian's chromium; RELAYD_CHROMIUM names another). With
// RELAYD_UI_SCREENSHOT=FILE, TestDashboardRollout writes a screenshot of the
// page to FILE (docs/dashboard.png is made so).
package ui
