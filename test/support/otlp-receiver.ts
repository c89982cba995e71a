/**
 * A real OTLP/HTTP receiver for tests: a node:http server taking POST /v1/traces in
 * OTLP's JSON encoding (what @opentelemetry/exporter-trace-otlp-http sends), decoding
 * every span with its resource, ids, parent and attributes. Anything else it refuses
 * loudly (the test sees the failure, never a silent drop).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: { code?: number; message?: string };
  service: string;
  startNs: bigint;
  endNs: bigint;
}

export interface OtlpReceiver {
  /** The base URL to give the gateway (spans arrive at /v1/traces). */
  url: string;
  spans: ReceivedSpan[];
  /** Requests it refused (wrong path, encoding), with the reason. */
  refused: string[];
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

function valueOf(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.doubleValue !== undefined) return v.doubleValue;
  return JSON.stringify(v);
}

const attributesOf = (list: KeyValue[] = []) => Object.fromEntries(list.map((kv) => [kv.key, valueOf(kv.value)]));

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const refused: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const refuse = (why: string) => {
        refused.push(why);
        res.writeHead(400, { 'content-type': 'text/plain' }).end(why);
      };
      if (req.method !== 'POST' || req.url !== '/v1/traces') return refuse(`${req.method} ${req.url}`);
      if (!String(req.headers['content-type']).startsWith('application/json')) return refuse(`content-type ${req.headers['content-type']}`);
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        return refuse(`not JSON: ${(error as Error).message}`);
      }
      for (const rs of body.resourceSpans ?? []) {
        const service = String(attributesOf(rs.resource?.attributes)['service.name'] ?? '');
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind,
              attributes: attributesOf(s.attributes), status: s.status ?? {}, service,
              startNs: BigInt(s.startTimeUnixNano), endNs: BigInt(s.endTimeUnixNano),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    refused,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
