/**
 * OpenTelemetry tracing, off unless configured (the `tracing` config section, or the
 * standard OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables).
 * Off, nothing here is built and the request path only tests one `null`.
 *
 * On, each request gets one server span, continued from the client's W3C `traceparent`
 * (and `tracestate`) or started here; child spans for the session store round trips and
 * the upstream exchange; the backend receives the upstream span's `traceparent`. Spans
 * carry the mount, the status and the session outcome, never a session id or its data,
 * and no path beyond the mount's prefix (paths can hold ids and tokens). Spans leave in
 * batches over OTLP/HTTP (JSON) from the official SDK and exporter.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';

export interface TracingConfig {
  /** OTLP/HTTP base URL (spans go to `<endpoint>/v1/traces`); absent: the OTEL_* variables decide. */
  endpoint?: string | undefined;
  serviceName: string;
  /** Share of new traces recorded (a client's sampled flag is followed). */
  sampleRatio: number;
}

/** How long a shutdown may wait for the last spans to leave. */
export const TRACING_FLUSH_WAIT_MS = 2000;

/** Whether tracing is on: a configured endpoint, or the standard variables (OTEL_SDK_DISABLED=true wins). */
export function tracingWanted(config: TracingConfig | undefined, env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(config?.endpoint || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Where spans go: tracing.endpoint, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
export function tracesUrl(config: TracingConfig | undefined, env: NodeJS.ProcessEnv): string {
  const base = (url: string) => `${url.replace(/\/+$/, '')}/v1/traces`;
  if (config?.endpoint) return base(config.endpoint);
  return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || base(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '');
}

/** How long spans wait to leave in a batch: OTEL_BSP_SCHEDULE_DELAY (ms), else the SDK's default 5 s. */
export function batchDelayMs(env: NodeJS.ProcessEnv): number {
  const value = Number(env.OTEL_BSP_SCHEDULE_DELAY);
  return Number.isFinite(value) && value > 0 ? value : 5000;
}

/** A span in progress: end it once, with an error if the step failed. */
export interface StepSpan {
  end(error?: unknown): void;
}

/** The spans of one request. */
export interface RequestTrace {
  /** The trace id (32 hex digits), for the access log line. */
  readonly traceId: string;
  /** A child span of the server span, e.g. a store round trip. */
  step(name: string, attributes?: Record<string, string | number | boolean>): StepSpan;
  /**
   * Starts the upstream exchange's client span and writes its `traceparent` (and any
   * `tracestate`) into the headers sent to the backend, replacing the client's.
   */
  startUpstream(headers: IncomingHttpHeaders, attributes?: Record<string, string | number>): StepSpan;
  /** Ends the server span (idempotent). */
  end(outcome: { status: number | 'aborted'; mount?: string | undefined; route?: string | undefined; session?: string | undefined }): void;
}

export interface Tracing {
  /** The server span of a request, from its headers. */
  startRequest(method: string, headers: IncomingHttpHeaders): RequestTrace;
  /** Sends what is still buffered (bounded by TRACING_FLUSH_WAIT_MS) and stops. */
  shutdown(): Promise<void>;
}

const getter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};
const setter: TextMapSetter<IncomingHttpHeaders> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

function endSpan(span: Span, error?: unknown): void {
  if (!span.isRecording()) return; // ended already (a relay can fail after it ended, or the client leave after a failure)
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/**
 * The tracer, or null when tracing is off.
 * @example const tracing = createTracing({ serviceName: 'session-gateway', sampleRatio: 1 }, process.env)
 */
export function createTracing(config: TracingConfig | undefined, env: NodeJS.ProcessEnv = process.env): Tracing | null {
  if (!tracingWanted(config, env)) return null;
  const serviceName = env.OTEL_SERVICE_NAME || config?.serviceName || 'session-gateway';
  // The URL is resolved here, from the same environment tracingWanted read; the exporter
  // still reads its other OTEL_EXPORTER_OTLP_* variables (headers, timeout) itself.
  const exporter = new OTLPTraceExporter({ url: tracesUrl(config, env) });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config?.sampleRatio ?? 1) }),
    // OTEL_BSP_SCHEDULE_DELAY is the standard variable; this SDK version leaves it to the caller.
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: batchDelayMs(env) })],
  });
  const tracer = provider.getTracer('session-gateway');
  const propagator = new W3CTraceContextPropagator();

  return {
    startRequest(method, headers) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, getter);
      const server = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method } }, parent);
      const inServer: Context = trace.setSpan(ROOT_CONTEXT, server);
      let ended = false;
      return {
        traceId: server.spanContext().traceId,
        step(name, attributes) {
          const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, inServer);
          return { end: (error) => endSpan(span, error) };
        },
        startUpstream(outgoing, attributes) {
          const span = tracer.startSpan('upstream', { kind: SpanKind.CLIENT, attributes }, inServer);
          delete outgoing.traceparent;
          delete outgoing.tracestate;
          propagator.inject(trace.setSpan(ROOT_CONTEXT, span), outgoing, setter);
          return { end: (error) => endSpan(span, error) };
        },
        end({ status, mount, route, session }) {
          if (ended) return;
          ended = true;
          if (route) server.updateName(`${method} ${route}`);
          if (mount) server.setAttribute('sgw.mount', mount);
          if (route) server.setAttribute('http.route', route);
          if (session) server.setAttribute('sgw.session', session);
          if (status === 'aborted') {
            server.setAttribute('sgw.aborted', true);
          } else {
            server.setAttribute('http.response.status_code', status);
            if (status >= 500) server.setStatus({ code: SpanStatusCode.ERROR });
          }
          server.end();
        },
      };
    },
    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch(() => {}),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, TRACING_FLUSH_WAIT_MS); }),
      ]);
      clearTimeout(timer);
    },
  };
}
