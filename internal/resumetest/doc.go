// Package resumetest holds what the resume tests of several packages
// share: upstream answers to a Range resume, right and wrong (another
// version that ignores If-Range). Tests only; standard library and
// pkg/httprange.
package resumetest
