// Package units reads and writes the byte sizes and transfer rates that appear
// in relayd's configuration (--cache-max 20GiB, a rate limit of 100Mbit/s), so
// every flag, environment variable and YAML key spells them the same way.
//
// Sizes take IEC units (KiB, MiB, GiB, TiB, PiB, EiB: powers of 1024), SI
// units (KB, MB, GB, TB, PB, EB: powers of 1000) or none (bytes), in any
// case, with an optional space and an optional decimal fraction: "20GiB",
// "1.5 GB", "4096". A bare prefix such as "20G" is refused because tools
// disagree on whether it means GiB or GB.
//
// Rates are a size unit or a bit unit followed by "/s": "20MB/s",
// "100Mbit/s", "1.5 GiB/s". Because "Mb/s" means megabits to some readers and
// megabytes to others, a lowercase "b" after a prefix is refused; write
// "MB/s" or "Mbit/s". A rate of zero means unlimited.
//
// Parsing is exact (no floating point): fractions of a byte are truncated,
// and a value that would overflow int64 is an error. Bytes and Rate are the
// types to use in Config structs: they implement flag.Value and
// encoding.TextMarshaler/TextUnmarshaler and their String form parses back to
// the same value.
//
// The package does not enforce limits (a minimum cache size, a maximum rate);
// the package that owns the setting does.
package units
