/** Turns the runs into the Markdown table, the target checks and the JSON document. */
import type { Measurement } from './measure.ts';
import type { RowDef } from './systems.ts';
import { fmtMiB, fmtMs, fmtRatio, fmtRps, fmtSummary, summarize, type Summary } from './stats.ts';

export interface RowRun {
  run: number;
  throughput?: Measurement;
  latency?: Measurement;
  /** RSS right after start, before any load. */
  rssIdleBytes?: number;
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
  rpsRatio: Summary;
  cpuUs: Summary;
  /** bare's CPU µs/request ÷ this row's, per run: the req/s ratio both would have with a whole core each. */
  cpuRatio: Summary;
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
  for (const [id, row] of [...rows].sort((a, b) => a[0] - b[0])) {
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
      rpsRatio: paired(rows, id, BARE, rpsOf, (a, b) => a / b),
      cpuUs: summarize(ok.map((r) => cpuOf(r) ?? NaN)),
      cpuRatio: paired(rows, id, BARE, cpuOf, (a, b) => b / a),
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
    `| # | system | req/s @${t} | × bare | SUT CPU µs/req | × bare by CPU | p50 @${l} (ms) | p99 @${l} (ms) | p99 − bare (ms) | RSS (MiB) | RSS × bare | CPU % SUT / load core |`,
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of summaries) {
    if (s.skipped !== undefined && s.rps.n === 0) {
      lines.push(`| ${s.id} | ${s.label} | skipped: ${s.skipped.replaceAll('|', '/')} | | | | | | | | | |`);
      continue;
    }
    const flag = (s.notes.some((n) => n.includes('INVALID')) ? ' ⚠' : '') + (s.notes.some((n) => n.includes('†')) ? ' †' : '');
    lines.push(`| ${s.id} | ${s.label}${flag} | ${fmtSummary(s.rps, fmtRps)} | ${fmtSummary(s.rpsRatio, fmtRatio)} | ` +
      `${fmtSummary(s.cpuUs, (x) => x.toFixed(0))} | ${fmtSummary(s.cpuRatio, fmtRatio)} | ` +
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
  const ratio = (id: number, min: number, label: string) => {
    const s = by.get(id);
    if (!s || s.rpsRatio.n === 0) return out.push({ target: label, value: 'not measured', status: 'n/a' });
    out.push({ target: label, value: fmtSummary(s.rpsRatio, fmtRatio), status: s.rpsRatio.median >= min ? 'PASS' : 'FAIL' });
  };
  ratio(6, 0.9, 'row 6 req/s >= 0.90x bare proxy');
  {
    const s = by.get(6);
    if (!s || s.p99MinusBare.n === 0) out.push({ target: 'row 6 p99 @8 <= bare + 1 ms', value: 'not measured', status: 'n/a' });
    else out.push({ target: 'row 6 p99 @8 <= bare + 1 ms', value: `${fmtSummary(s.p99MinusBare, signedMs)} ms`, status: s.p99MinusBare.median <= 1 ? 'PASS' : 'FAIL' });
  }
  ratio(5, 0.95, 'row 5 req/s >= 0.95x bare proxy');
  ratio(7, 0.75, 'row 7 req/s >= 0.75x bare proxy');
  {
    const s = paired(rows, 6, 4, rpsOf, (a, b) => a / b);
    if (s.n === 0) out.push({ target: 'row 6 req/s >= 2x row 4 (naive)', value: 'not measured', status: 'n/a' });
    else out.push({ target: 'row 6 req/s >= 2x row 4 (naive)', value: fmtSummary(s, fmtRatio), status: s.median >= 2 ? 'PASS' : 'FAIL' });
  }
  for (const id of [5, 6, 7]) {
    const s = by.get(id);
    const label = `row ${id} RSS under load <= 1.2x bare proxy`;
    if (!s || s.rssRatio.n === 0) out.push({ target: label, value: 'not measured', status: 'n/a' });
    else out.push({ target: label, value: fmtSummary(s.rssRatio, fmtRatio), status: s.rssRatio.median <= 1.2 ? 'PASS' : 'FAIL' });
  }
  return out;
}

export function targetsTable(checks: TargetCheck[]): string {
  return ['| target | median (range) | |', '|---|---:|---|', ...checks.map((c) => `| ${c.target} | ${c.value} | ${c.status} |`)].join('\n');
}
