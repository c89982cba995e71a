/** When tracing is on, and where its spans go: the standard OTEL_* rules and the config section. */
import { describe, expect, it } from 'vitest';
import { batchDelayMs, createTracing, tracesUrl, tracingWanted } from '../../../src/ops/tracing.ts';

const config = { serviceName: 'session-gateway', sampleRatio: 1 };

describe('tracingWanted', () => {
  it('off without an endpoint anywhere, on with one in the config or the environment', () => {
    expect(tracingWanted(undefined, {})).toBe(false);
    expect(tracingWanted(config, {})).toBe(false);
    expect(tracingWanted({ ...config, endpoint: 'http://c:4318' }, {})).toBe(true);
    expect(tracingWanted(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(tracingWanted(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
  });

  it('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none win over any endpoint', () => {
    expect(tracingWanted({ ...config, endpoint: 'http://c:4318' }, { OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingWanted(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
  });

  it('off, nothing is built', () => {
    expect(createTracing(undefined, {})).toBeNull();
  });
});

describe('tracesUrl', () => {
  it('the config endpoint, the traces endpoint as given, or the base endpoint + /v1/traces', () => {
    expect(tracesUrl({ ...config, endpoint: 'http://c:4318/' }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://other:4318' })).toBe('http://c:4318/v1/traces');
    expect(tracesUrl(undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' })).toBe('http://c:4318/custom');
    expect(tracesUrl(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe('http://c:4318/v1/traces');
  });
});

describe('batchDelayMs', () => {
  it('OTEL_BSP_SCHEDULE_DELAY when a positive number, else 5 s', () => {
    expect(batchDelayMs({ OTEL_BSP_SCHEDULE_DELAY: '200' })).toBe(200);
    expect(batchDelayMs({ OTEL_BSP_SCHEDULE_DELAY: 'soon' })).toBe(5000);
    expect(batchDelayMs({})).toBe(5000);
  });
});
