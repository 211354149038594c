// summarize.mjs: turns the suite's raw results (one JSON per implementation,
// as the suite's cli prints them) into results/conformance-<date>.json and a
// markdown summary, classifying every test exactly as cache-tests.fyi does
// (the suite's own determineTestResult, dependencies honoured).
//
// node summarize.mjs --suite DIR --raw DIR --impls "relayd squid ..." \
//   --meta FILE.json --out results/conformance-DATE.json --md results/conformance-DATE.md
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

function args () {
  const a = {}
  const v = process.argv.slice(2)
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1]
  for (const k of ['suite', 'raw', 'impls', 'meta', 'out', 'md']) {
    if (a[k] === undefined) throw new Error(`summarize.mjs: --${k} is required`)
  }
  return a
}

// The suite's tests: tests/index.mjs in a checkout and in the npm package.
export async function loadSuite (dir) {
  const { default: suites } = await import(pathToFileURL(path.join(dir, 'tests/index.mjs')))
  // npm 0.4.x's cli adds the surrogate-control suite to the index itself.
  const surrogate = path.join(dir, 'tests/surrogate-control.mjs')
  if (fs.existsSync(surrogate)) {
    const { default: s } = await import(pathToFileURL(surrogate))
    if (!suites.some(x => x.id === s.id)) suites.push(s)
  }
  const byId = new Map()
  for (const s of suites) for (const t of s.tests) byId.set(t.id, t)
  return { suites, byId }
}

// resultOf: the rules of the suite's determineTestResult
// (test-engine/lib/results.mjs; lib/display.mjs in npm 0.4.x, which only
// loads in a browser), dependencies honoured, as cache-tests.fyi shows them.
export function resultOf (suite, id, raw) {
  const test = suite.byId.get(id)
  const r = raw[id]
  if (r === undefined) return 'untested'
  for (const dep of test.depends_on ?? []) {
    if (!['pass', 'check_yes'].includes(resultOf(suite, dep, raw))) return 'dependency_fail'
  }
  if (r[0] === 'Setup') return r[1] === 'retry' ? 'retry' : 'setup_fail'
  if (r[0] === 'AbortError') return 'harness_fail'
  const kind = test.kind ?? 'required'
  if (kind === 'required') return r === true ? 'pass' : 'must_fail'
  if (kind === 'optimal') return r === true ? 'pass' : 'optimal_fail'
  if (kind === 'check') return r === true ? 'check_yes' : 'check_no'
  throw new Error(`test ${id}: unknown kind ${kind}`)
}

const classes = ['pass', 'must_fail', 'optimal_fail', 'check_yes', 'check_no', 'setup_fail',
  'harness_fail', 'dependency_fail', 'retry', 'untested']

export function classify (suite, raw) {
  const counts = Object.fromEntries(classes.map(c => [c, 0]))
  const tests = []
  for (const s of suite.suites) {
    for (const t of s.tests) {
      const cls = resultOf(suite, t.id, raw)
      counts[cls]++
      const r = raw[t.id]
      tests.push({
        id: t.id,
        name: t.name,
        suite: s.id,
        kind: t.kind ?? 'required',
        class: cls,
        message: Array.isArray(r) ? r.join(': ') : undefined
      })
    }
  }
  // "passed": the suite's own pass types (✅ and Y: its passTypes, the
  // results a dependent test may build on); "failed": every required or
  // optimal test that did not pass (⛔️ ⚠️ 🔹 ⁉️ ⚪️ ↻). A check answering N is
  // neither: it tells how a cache behaves, not whether it conforms.
  counts.total = tests.length
  counts.passed = counts.pass + counts.check_yes
  // untested: not applicable to a shared cache (browser-only tests), not run.
  const notPassed = t => t.class !== 'pass' && t.class !== 'untested'
  counts.failed = tests.filter(t => t.kind !== 'check' && notPassed(t)).length
  counts.required_not_passed = tests.filter(t => t.kind === 'required' && notPassed(t)).length
  return { counts, tests }
}

async function main () {
  const a = args()
  const meta = JSON.parse(fs.readFileSync(a.meta, 'utf8'))
  const suite = await loadSuite(a.suite)
  const out = { ...meta, implementations: {} }
  for (const impl of a.impls.split(/\s+/).filter(Boolean)) {
    const file = path.join(a.raw, `${impl}.json`)
    const entry = { version: meta.versions?.[impl] ?? '' }
    let raw
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'))
    } catch (err) {
      entry.error = `no results (${err.message}); see the job's log for ${impl}`
      out.implementations[impl] = entry
      continue
    }
    const { counts, tests } = classify(suite, raw)
    entry.counts = counts
    const failing = tests.filter(t => t.kind !== 'check' && t.class !== 'pass' && t.class !== 'untested')
    entry.setup_errors = setupErrors(path.join(a.raw, `${impl}-cli.log`))
    if (impl === 'relayd') {
      entry.failures = failing.map(({ id, name, kind, class: cls, message }) => ({ id, name, kind, class: cls, message }))
    } else {
      entry.failing_ids = failing.map(t => t.id)
    }
    out.implementations[impl] = entry
  }
  fs.mkdirSync(path.dirname(a.out), { recursive: true })
  fs.writeFileSync(a.out, JSON.stringify(out, null, 1).replace(/\[\n\s+"[^\]]*\]/g, x => x.replace(/\n\s*/g, ' ')) + '\n')
  fs.writeFileSync(a.md, markdown(out))
  process.stdout.write(markdown(out))
}

// setupErrors: the suite's client logs, on stderr and not in its results, why
// a test's setup failed ("ERROR: <uuid> Setup PUT config resulted in 405 ...");
// counted by message, the uuid and the echoed headers left out.
function setupErrors (file) {
  const counts = {}
  let text = ''
  try { text = fs.readFileSync(file, 'utf8') } catch { return counts }
  for (const line of text.split('\n')) {
    const m = /^ERROR: [0-9a-f-]+ (.*?)( - .*)?$/.exec(line)
    if (m) counts[m[1]] = (counts[m[1]] ?? 0) + 1
  }
  return counts
}

export function countsTable (out) {
  const rows = [
    '| implementation | version | passed (✅+Y) | ✅ | failed | MUST failures (⛔️) | required not passed | optimal (⚠️) | setup (🔹) | dependency (⚪️) | harness/retry | checks Y/N |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const [impl, e] of Object.entries(out.implementations)) {
    if (!e.counts) {
      rows.push(`| ${impl} | ${e.version} | ${e.error} | | | | | | | | | |`)
      continue
    }
    const c = e.counts
    rows.push(`| ${impl} | ${e.version} | ${c.passed} | ${c.pass} | ${c.failed} | ${c.must_fail} | ${c.required_not_passed} | ${c.optimal_fail} | ` +
      `${c.setup_fail} | ${c.dependency_fail} | ${c.harness_fail + c.retry} | ${c.check_yes}/${c.check_no} |`)
  }
  return rows.join('\n')
}

function markdown (out) {
  const lines = [
    `# HTTP caching conformance, ${out.date}`,
    '',
    `suite ${out.suite}, relayd ${out.commit}, run \`${out.command}\` in ${out.seconds} s`,
    '',
    countsTable(out),
    ''
  ]
  const r = out.implementations.relayd
  if (r?.failures) {
    lines.push(`## relayd: ${r.failures.length} required or optimal tests not passed`, '', '| test | kind | result | message |', '|---|---|---|---|')
    for (const f of r.failures) {
      lines.push(`| \`${f.id}\` ${f.name.replace(/\|/g, '\\|')} | ${f.kind} | ${f.class} | ${(f.message ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`)
    }
    lines.push('')
  }
  for (const [impl, e] of Object.entries(out.implementations)) {
    for (const [msg, n] of Object.entries(e.setup_errors ?? {})) lines.push(`${impl}: ${n} × ${msg}`, '')
  }
  return lines.join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main()
