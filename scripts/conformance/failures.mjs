// failures.mjs: the tables of docs/conformance.md and docs/benchmarks.md,
// regenerated from a results file of `make conformance` so the docs say what
// the last run measured, and nothing else:
//
//   node scripts/conformance/failures.mjs [--results results/conformance-DATE.json]
//        [--reasons scripts/conformance/reasons.json] [--write docs/conformance.md,docs/benchmarks.md]
//        [--prefix diag-]
//
// Without --write it prints the tables. With it, each file's blocks between
// <!-- conformance:NAME:begin --> and <!-- conformance:NAME:end --> are
// replaced (NAME: counts, causes, failures, each after --prefix when given, so
// a second results file can fill blocks of its own); other text is left alone.
//
// Every relayd failure is attributed to the first cause of reasons.json that
// claims it: by test id (ids), by a regular expression on the id (id_match) or
// on the suite's failure message (message_match), or, for a cause with
// setup_error, every failure when the suite's client logged that setup error
// (a cache that refuses the suite's PUT /config fails every test at once).
// A failure no cause claims is listed as "unexplained": the docs never hide one.
import fs from 'node:fs'
import path from 'node:path'
import { countsTable } from './summarize.mjs'

const here = path.dirname(new URL(import.meta.url).pathname)
const root = path.resolve(here, '../..')

function args () {
  const a = { reasons: path.join(here, 'reasons.json') }
  const v = process.argv.slice(2)
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1]
  if (!a.results) {
    const dir = path.join(root, 'results')
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter(f => /^conformance-\d{4}-\d{2}-\d{2}\.json$/.test(f)).sort() : []
    if (!files.length) throw new Error('failures.mjs: no results/conformance-*.json; run make conformance or pass --results')
    a.results = path.join(dir, files[files.length - 1])
  }
  return a
}

export function attribute (out, reasons) {
  const relayd = out.implementations.relayd
  if (!relayd?.failures) throw new Error('results have no relayd failures list (relayd did not run?)')
  const setupErrors = Object.keys(relayd.setup_errors ?? {})
  const others = Object.entries(out.implementations).filter(([n, e]) => n !== 'relayd' && e.failing_ids)
  const rows = relayd.failures.map(f => {
    const cause = reasons.causes.find(c =>
      (c.setup_error && setupErrors.some(m => new RegExp(c.setup_error).test(m))) ||
      c.ids?.includes(f.id) ||
      (c.id_match && new RegExp(c.id_match).test(f.id)) ||
      (c.message_match && new RegExp(c.message_match).test(f.message ?? '')))
    const alsoFail = others.filter(([, e]) => e.failing_ids.includes(f.id)).map(([n]) => n)
    return { ...f, cause: cause?.id ?? 'unexplained', reason: cause?.tests?.[f.id] ?? cause?.reason ?? '', alsoFail }
  })
  return rows
}

const esc = s => String(s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')

export function tables (out, reasons) {
  const rows = attribute(out, reasons)
  const byCause = new Map()
  for (const r of rows) {
    if (!byCause.has(r.cause)) byCause.set(r.cause, [])
    byCause.get(r.cause).push(r)
  }
  const title = id => reasons.causes.find(c => c.id === id) ?? { title: 'not yet explained', reason: 'to be investigated', on_purpose: false }
  const src = `results of ${out.date} (relayd ${out.commit}, suite ${out.suite})`
  const causes = [
    `From the ${src}: ${rows.length} required or optimal tests not passed, ` +
      `${rows.filter(r => r.class === 'must_fail').length} of them MUST-level failures (⛔️).`,
    '',
    '| cause | tests | ⛔️ | on purpose | why, and what would fix it |',
    '|---|---:|---:|---|---|'
  ]
  for (const [id, rs] of [...byCause].sort((a, b) => b[1].length - a[1].length)) {
    const c = title(id)
    causes.push(`| **${esc(c.title)}** (\`${id}\`) | ${rs.length} | ${rs.filter(r => r.class === 'must_fail').length} | ` +
      `${c.on_purpose ? 'yes' : 'no'} | ${esc(c.reason)} |`)
  }
  const failures = [
    `From the ${src}. "also fails on" names the peers of the same run that fail the test too.`,
    '',
    '| test | kind | result | cause | reason | suite says | also fails on |',
    '|---|---|---|---|---|---|---|'
  ]
  for (const r of rows) {
    failures.push(`| \`${r.id}\` ${esc(r.name)} | ${r.kind} | ${r.class} | \`${r.cause}\` | ${esc(r.reason)} | ` +
      `${esc(r.message)} | ${r.alsoFail.join(', ')} |`)
  }
  const counts = [
    `\`${out.command}\` on ${out.date}, relayd ${out.commit}, suite ${out.suite}, ${out.seconds} s for the whole job:`,
    '',
    countsTable(out)
  ]
  return { counts: counts.join('\n'), causes: causes.join('\n'), failures: failures.join('\n') }
}

function replaceBlocks (file, blocks) {
  let text = fs.readFileSync(file, 'utf8')
  let n = 0
  for (const [name, body] of Object.entries(blocks)) {
    const re = new RegExp(`(<!-- conformance:${name}:begin -->\\n)[\\s\\S]*?(<!-- conformance:${name}:end -->)`)
    if (re.test(text)) {
      text = text.replace(re, (_, b, e) => `${b}${body}\n${e}`)
      n++
    }
  }
  if (n === 0) throw new Error(`${file}: no <!-- conformance:NAME:begin --> block`)
  fs.writeFileSync(file, text)
}

const a = args()
const out = JSON.parse(fs.readFileSync(a.results, 'utf8'))
const reasons = JSON.parse(fs.readFileSync(a.reasons, 'utf8'))
const blocks = tables(out, reasons)
if (a.write) {
  const named = Object.fromEntries(Object.entries(blocks).map(([k, v]) => [(a.prefix ?? '') + k, v]))
  for (const f of a.write.split(',')) replaceBlocks(path.resolve(f), named)
} else {
  process.stdout.write(`${blocks.counts}\n\n${blocks.causes}\n\n${blocks.failures}\n`)
}
