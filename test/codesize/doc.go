// Package codesize holds one test: the packages issue 12 cut into files
// of one concern keep no product file over 500 lines and no product
// function over 80 lines without the reason written above it.
package codesize
