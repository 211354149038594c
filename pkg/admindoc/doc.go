// Package admindoc declares the documents of the admin API (/v1/…) that
// behaviour packages produce: each is declared once, here, and the
// package whose state it shows uses it by a type alias
// (mirror.Progress = admindoc.SyncProgress, proxycache.Stats =
// admindoc.CacheCounts, …), so pkg/admin serves it and its Client decodes
// it without a conversion and without importing a behaviour package.
//
// It is vocabulary (layer 1): it imports the standard library and
// pkg/wire only, so cmd/relayd may import it. It holds no behaviour; the
// documents only the admin layer builds stay in pkg/admin.
package admindoc
