/**
 * The tracing keys: off by default, the standard OpenTelemetry variables read, a receiver URL that
 * is not http(s) refused at load, and no SDK loaded while tracing is off.
 */
import { describe, expect, it } from 'vitest';
import { buildSettings } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { startTracing } from '../../src/tracing/tracer.js';

const main = {
  resource_ids: ['sqlite_traffic'],
  resources: { sqlite_traffic: { db_max_conn_pool_size: 2, db_min_conn_pool_size: 1 } },
  secure: { sqlite_traffic: { db_type: 'sqlite', db_path: 'data/x.db' } },
};

describe('tracing settings', () => {
  it('are off by default, sending to a local collector as service watchtower', () => {
    const s = buildSettings(main, {}, { env: {} });
    expect(s.otel_traces).toBe(false);
    expect(s.otel_exporter_otlp_endpoint).toBe('http://127.0.0.1:4318');
    expect(s.otel_service_name).toBe('watchtower');
  });

  it('take the receiver and the service name from the standard OpenTelemetry variables', () => {
    const s = buildSettings(main, {}, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector.example:4318', OTEL_SERVICE_NAME: 'gw-eu' } });
    expect(s.otel_exporter_otlp_endpoint).toBe('https://collector.example:4318');
    expect(s.otel_service_name).toBe('gw-eu');
  });

  it('refuse a receiver that is not an http(s) URL, and an empty service name', () => {
    for (const bad of ['collector:4318', 'grpc://collector:4317', '']) {
      expect(() => buildSettings({ ...main, otel_exporter_otlp_endpoint: bad }, {}, { env: {} }), bad).toThrow(ConfigError);
    }
    expect(() => buildSettings({ ...main, otel_service_name: ' ' }, {}, { env: {} })).toThrow(ConfigError);
    expect(() => buildSettings({ ...main, otel_traces: 'yes' }, {}, { env: {} })).toThrow(ConfigError);
  });

  it('start no tracer while otel_traces is off', async () => {
    const s = buildSettings(main, {}, { env: {} });
    expect(await startTracing(() => s, '0.0.0')).toBeUndefined();
  });
});
