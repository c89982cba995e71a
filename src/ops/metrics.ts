/**
 * Prometheus metrics (prom-client), one registry per gateway instance so that tests
 * and reloads never share counters. Labels are low-cardinality only: mount names,
 * status classes, fixed reason codes; never paths or session ids.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { BucketHistogram } from './bucket-histogram.ts';
import { CounterFamily } from './counter-family.ts';

/** The value for a key, made once (a Map lookup per request instead of a join and a new child). */
function childCache<T>(make: (key: string) => T): (key: string) => T {
  const children = new Map<string, T>();
  return (key) => {
    let child = children.get(key);
    if (child === undefined) children.set(key, (child = make(key)));
    return child;
  };
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'sgw_process_' });
  const registers = [registry];
  // Counted per request (and per session load or write): CounterFamily, not prom-client's Counter (see counter-family.ts).
  const requests = new CounterFamily({ name: 'sgw_requests_total', help: 'Requests by mount and status class', labelNames: ['mount', 'status_class'], registers });
  // Observed on every proxied request: a BucketHistogram, not prom-client's (see bucket-histogram.ts).
  const upstreamDuration = new BucketHistogram({
    name: 'sgw_upstream_duration_seconds', help: 'Time from forwarding to upstream response headers, by mount',
    label: 'mount', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
  });
  const sessionWrites = new CounterFamily({ name: 'sgw_session_writes_total', help: 'Session store writes by kind and result', labelNames: ['kind', 'result'], registers });
  const writeBacks = new CounterFamily({ name: 'sgw_write_backs_total', help: 'Write-backs by mount, result and reason', labelNames: ['mount', 'result', 'reason'], registers });
  // Read when scraped, not updated per request: a gauge's inc/dec hashes its labels every time.
  const live = { openConnections: () => 0, requestsInFlight: () => 0 };
  const sessionLoads = new CounterFamily({ name: 'sgw_session_loads_total', help: 'Session loads by result', labelNames: ['result'], registers });
  return {
    registry,
    /** Where the gauges below read their values; the HTTP server's instrumentation sets them (ops/instrument.ts). */
    live,
    requests,
    /** The requests counter for one mount and status class (label values are bounded: mounts × classes). */
    requestsOf: (mount: string, statusClass: string) => requests.labels(mount, statusClass),
    /** The same, by HTTP status: one array of children per mount, no string built per request. */
    requestsByStatus: childCache((mount) => {
      const byClass = ['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => requests.labels(mount, c));
      return (status: number) => byClass[Math.floor(status / 100) - 1] ?? requests.labels(mount, `${Math.floor(status / 100)}xx`);
    }),
    upstreamDuration,
    upstreamDurationOf: (mount: string) => upstreamDuration.labels(mount),
    sessionLoads,
    sessionLoadsOf: childCache((result) => sessionLoads.labels(result)),
    sessionWrites,
    sessionWritesOf: (kind: string, result: string) => sessionWrites.labels(kind, result),
    writeBacks,
    writeBacksOf: (mount: string, result: string, reason: string) => writeBacks.labels(mount, result, reason),
    dataOmitted: new Counter({ name: 'sgw_session_data_omitted_total', help: 'Tokens sent without data because it exceeded the header budget', labelNames: ['mount'], registers }),
    strippedHeaders: new Counter({ name: 'sgw_client_owned_headers_stripped_total', help: 'Gateway-owned headers removed from client requests', registers }),
    redisErrors: new Counter({ name: 'sgw_redis_errors_total', help: 'Redis connection and command errors', registers }),
    redisReconnects: new Counter({ name: 'sgw_redis_reconnects_total', help: 'Redis reconnect attempts', registers }),
    openConnections: new Gauge({
      name: 'sgw_open_connections', help: 'Client connections currently open', registers,
      collect() { this.set(live.openConnections()); },
    }),
    requestsInFlight: new Gauge({
      name: 'sgw_requests_in_flight', help: 'Client requests received and not yet answered (gateway endpoints included)', registers,
      collect() { this.set(live.requestsInFlight()); },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
