/** Turns the runs into the Markdown table, the target checks and the JSON document. */
import type { Measurement } from './measure.ts';
import type { PairedResult } from './paired.ts';
import type { RowDef } from './systems.ts';
import { fmtMiB, fmtMs, fmtRatio, fmtRps, fmtSummary, summarize, type Summary } from './stats.ts';

export interface RowRun {
  run: number;
  throughput?: Measurement;
  latency?: Measurement;
  /** RSS right after start, before any load. */
  rssIdleBytes?: number;
  /** This row and the bare proxy (row 3) loaded at once on the SUT core: CPU per request, row over bare. */
  paired?: PairedResult;
  error?: string;
}

export interface RowResult {
  def: Pick<RowDef, 'id' | 'key' | 'label'>;
  skipped?: string;
  runs: RowRun[];
}

export interface RowSummary {
  id: number;
  key: string;
  label: string;
  skipped?: string;
  rps: Summary;
  cpuUs: Summary;
  /** This row's CPU µs/request ÷ the bare proxy's, from the paired measurement of each run. */
  cpuRatio: Summary;
  /** The inverse: the req/s this row reaches per core, as a multiple of the bare proxy's. */
  perCoreRatio: Summary;
  p50: Summary;
  p99: Summary;
  p99MinusBare: Summary;
  p99At64: Summary;
  rss: Summary;
  rssRatio: Summary;
  sutBusy: Summary;
  loadBusy: Summary;
  notes: string[];
}

const BARE = 3;
const BARE_UNDICI = 8;

function perRun(rows: Map<number, RowResult>, id: number, pick: (r: RowRun) => number | undefined): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of rows.get(id)?.runs ?? []) {
    const v = pick(r);
    if (v !== undefined && Number.isFinite(v)) out.set(r.run, v);
  }
  return out;
}

/** Per run, a(row) op b(reference row), for runs where both were measured. */
function paired(rows: Map<number, RowResult>, id: number, ref: number, pick: (r: RowRun) => number | undefined, op: (a: number, b: number) => number): Summary {
  const a = perRun(rows, id, pick);
  const b = perRun(rows, ref, pick);
  const values: number[] = [];
  for (const [run, v] of a) {
    const w = b.get(run);
    if (w !== undefined) values.push(op(v, w));
  }
  return summarize(values);
}

const rpsOf = (r: RowRun) => r.throughput?.rps;
const p99Of = (r: RowRun) => r.latency?.latencyMs.p99;
const rssOf = (r: RowRun) => r.throughput?.rssMaxBytes;
const cpuOf = (r: RowRun) => r.throughput?.sutCpuUsPerRequest;

export function summarizeRows(rows: Map<number, RowResult>, sutCpu: string, loadCpu: string): RowSummary[] {
  const out: RowSummary[] = [];
  // In the order the rows were run (ROWS: the bare undici floor beside the bare proxy).
  for (const [id, row] of rows) {
    const ok = row.runs.filter((r) => !r.error);
    const notes: string[] = [];
    for (const r of row.runs) {
      if (r.error) notes.push(`run ${r.run}: ${r.error}`);
      for (const m of [r.throughput, r.latency]) {
        if (!m) continue;
        if (m.invalid) notes.push(`run ${r.run} @${m.connections}: INVALID (${m.invalid})`);
        if (m.disturbed) {
          notes.push(`run ${r.run} @${m.connections}: † other processes used ${m.disturbance.foreignCores.toFixed(2)} cores, ` +
            `${Math.round(m.sutCoreForeign * 100)}% of the SUT's core, during the kept attempt` +
            ` (${m.reruns + 1} attempt${m.reruns > 0 ? 's' : ''})`);
        }
        else if (m.reruns > 0) notes.push(`run ${r.run} @${m.connections}: rerun ${m.reruns}x after disturbance`);
      }
    }
    const sutBusy = summarize(ok.map((r) => r.throughput?.disturbance.busy[`cpu${sutCpu}`] ?? NaN));
    if (sutBusy.n > 0 && sutBusy.median < 0.9) {
      notes.push(`CPU ${sutCpu} (the system under test) was only ${Math.round(sutBusy.median * 100)}% busy at full load: ` +
        `the load side on CPU ${loadCpu} was the limit, so this row's req/s is a lower bound`);
    }
    const skipped = row.skipped ?? (ok.length === 0 && row.runs.length > 0 ? row.runs[0]!.error : undefined);
    out.push({
      id,
      key: row.def.key,
      label: row.def.label,
      skipped,
      rps: summarize(ok.map((r) => rpsOf(r) ?? NaN)),
      cpuUs: summarize(ok.map((r) => cpuOf(r) ?? NaN)),
      cpuRatio: summarize(ok.map((r) => (id === BARE ? 1 : r.paired?.ratio ?? NaN))),
      perCoreRatio: summarize(ok.map((r) => (id === BARE ? 1 : 1 / (r.paired?.ratio ?? NaN)))),
      p50: summarize(ok.map((r) => r.latency?.latencyMs.p50 ?? NaN)),
      p99: summarize(ok.map((r) => p99Of(r) ?? NaN)),
      p99MinusBare: paired(rows, id, BARE, p99Of, (a, b) => a - b),
      p99At64: summarize(ok.map((r) => r.throughput?.latencyMs.p99 ?? NaN)),
      rss: summarize(ok.map((r) => rssOf(r) ?? NaN)),
      rssRatio: paired(rows, id, BARE, rssOf, (a, b) => a / b),
      sutBusy,
      loadBusy: summarize(ok.map((r) => r.throughput?.disturbance.busy[`cpu${loadCpu}`] ?? NaN)),
      notes,
    });
  }
  return out;
}

const pct = (x: number) => `${Math.round(x * 100)}`;
const signedMs = (x: number) => `${x >= 0 ? '+' : '−'}${fmtMs(Math.abs(x))}`;

export function markdownTable(summaries: RowSummary[], connections: { throughput: number; latency: number }): string {
  const t = connections.throughput;
  const l = connections.latency;
  const lines = [
    `| # | system | req/s @${t} | SUT CPU µs/req | CPU/req × bare (paired) | req/s per core × bare (paired) | p50 @${l} (ms) | p99 @${l} (ms) | p99 − bare (ms) | RSS (MiB) | RSS × bare | CPU % SUT / load core |`,
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of summaries) {
    if (s.skipped !== undefined && s.rps.n === 0) {
      lines.push(`| ${s.id} | ${s.label} | skipped: ${s.skipped.replaceAll('|', '/')} | | | | | | | | | |`);
      continue;
    }
    const flag = (s.notes.some((n) => n.includes('INVALID')) ? ' ⚠' : '') + (s.notes.some((n) => n.includes('†')) ? ' †' : '');
    lines.push(`| ${s.id} | ${s.label}${flag} | ${fmtSummary(s.rps, fmtRps)} | ` +
      `${fmtSummary(s.cpuUs, (x) => x.toFixed(0))} | ${fmtSummary(s.cpuRatio, fmtRatio)} | ${fmtSummary(s.perCoreRatio, fmtRatio)} | ` +
      `${fmtSummary(s.p50, fmtMs)} | ${fmtSummary(s.p99, fmtMs)} | ${fmtSummary(s.p99MinusBare, signedMs)} | ` +
      `${fmtSummary(s.rss, fmtMiB)} | ${fmtSummary(s.rssRatio, fmtRatio)} | ${fmtSummary(s.sutBusy, pct)} / ${fmtSummary(s.loadBusy, pct)} |`);
  }
  return lines.join('\n');
}

export interface TargetCheck {
  target: string;
  value: string;
  status: 'PASS' | 'FAIL' | 'n/a';
}

export function checkTargets(summaries: RowSummary[], rows: Map<number, RowResult>): TargetCheck[] {
  const by = new Map(summaries.map((s) => [s.id, s]));
  const out: TargetCheck[] = [];
  const check = (label: string, s: Summary | undefined, pass: (x: number) => boolean, fmt: (x: Summary) => string = (x) => fmtSummary(x, fmtRatio)) => {
    if (!s || s.n === 0) out.push({ target: label, value: 'not measured', status: 'n/a' });
    else out.push({ target: label, value: fmt(s), status: pass(s.median) ? 'PASS' : 'FAIL' });
  };
  check('row 5 (anonymous) CPU/req <= 0.60x bare proxy, paired', by.get(5)?.cpuRatio, (x) => x <= 0.6);
  // Both rows were paired with the bare proxy in the same run: their ratio is row 5 against the bare undici floor.
  check('row 5 CPU/req <= 1.15x bare undici (row 8)', paired(rows, 5, BARE_UNDICI, (r) => r.paired?.ratio, (a, b) => a / b), (x) => x <= 1.15);
  check('row 6 (~500 B session) CPU/req <= 0.72x bare proxy, paired', by.get(6)?.cpuRatio, (x) => x <= 0.72);
  check('row 7 (1 in 10 writes back) CPU/req <= 0.90x bare proxy, paired', by.get(7)?.cpuRatio, (x) => x <= 0.9);
  check('row 6 p99 @8 <= bare + 1 ms', by.get(6)?.p99MinusBare, (x) => x <= 1, (x) => `${fmtSummary(x, signedMs)} ms`);
  for (const id of [5, 6, 7]) check(`row ${id} RSS under load <= 1.2x bare proxy`, by.get(id)?.rssRatio, (x) => x <= 1.2);
  return out;
}

export function targetsTable(checks: TargetCheck[]): string {
  return ['| target | median (range) | |', '|---|---:|---|', ...checks.map((c) => `| ${c.target} | ${c.value} | ${c.status} |`)].join('\n');
}
