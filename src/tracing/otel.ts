/**
 * The OpenTelemetry SDK set up for the gateway: a tracer provider of its own (not registered as the
 * process's global one, so an embedding app's tracing is left alone), a BatchSpanProcessor and the
 * OTLP/HTTP exporter. Imported only when `otel_traces` is on (src/tracing/tracer.ts).
 */
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { SettingsReader } from '../config/index.js';
import { getLogger } from '../log/index.js';
import { failures } from '../log/summarise.js';
import { startRequestSpan, endRequestSpans } from './spans.js';
import type { RequestTracer } from './tracer.js';

const log = getLogger('otel.ts');

/** Milliseconds between exports; OTEL_BSP_SCHEDULE_DELAY (the SDK's own variable) may shorten it. */
function scheduleDelay(): number {
  const env = Number(process.env.OTEL_BSP_SCHEDULE_DELAY);
  return Number.isFinite(env) && env > 0 ? env : 5000;
}

type ExportCallback = Parameters<SpanExporter['export']>[1];

/** The exporter, with its failures logged (summarised while a collector stays away) instead of dropped silently. */
class LoggedExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly url: string,
  ) {}

  export(spans: Parameters<SpanExporter['export']>[0], done: ExportCallback): void {
    this.inner.export(spans, (result) => {
      // ExportResultCode.SUCCESS is 0.
      if (result.code !== 0) {
        failures.write(`otel-export ${this.url}`, log.warning, 'otel-export-err', 'spans could not be exported; they are dropped', {
          url: this.url,
          spans: spans.length,
          error: result.error?.message,
        });
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export function createOtelTracer(settings: SettingsReader, version: string): RequestTracer {
  const cfg = settings();
  const url = `${cfg.otel_exporter_otlp_endpoint.replace(/\/+$/, '')}/v1/traces`;
  const exporter = new LoggedExporter(new OTLPTraceExporter({ url, timeoutMillis: 10_000 }), url);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg.otel_service_name, [ATTR_SERVICE_VERSION]: version }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: scheduleDelay() })],
  });
  const tracer = provider.getTracer('watchtower', version);
  log.info('otel-start', 'OpenTelemetry tracing on: spans go to the OTLP receiver', { url, service: cfg.otel_service_name });
  return {
    start: (method, parent, start) => startRequestSpan(tracer, method, parent, start),
    end: (state, done) => endRequestSpans(tracer, settings, state, done),
    async shutdown(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([provider.shutdown().then(() => 'done' as const, (err: unknown) => err), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') log.warning('otel-shutdown', 'spans still queued at shutdown could not be sent in time; dropped', { timeout_ms: timeoutMs });
      else if (outcome !== 'done') log.warning('otel-shutdown', 'stopping the trace exporter failed', { error: outcome instanceof Error ? outcome.message : String(outcome) });
    },
  };
}
