// Preloaded into the suite's client (node --import) only when DIRECT_SETUP=1:
// the client's PUT /config/<uuid> and GET /state/<uuid> go to the origin
// directly instead of through the cache under test. A diagnostic for a cache
// that does not pass those requests on yet (every test would fail on setup):
// it shows what would fail next. Never the figures of record: the suite means
// them to cross the cache. Needs the current suite (global fetch), not npm 0.4.x.
const base = process.env.npm_config_base
const origin = process.env.CONFORMANCE_ORIGIN
if (!base || !origin) throw new Error('direct-setup.mjs: npm_config_base and CONFORMANCE_ORIGIN must be set')
const realFetch = globalThis.fetch
globalThis.fetch = function (url, init) {
  if (typeof url === 'string' && (url.startsWith(`${base}/config/`) || url.startsWith(`${base}/state/`))) {
    url = origin + url.slice(base.length)
  }
  return realFetch(url, init)
}
