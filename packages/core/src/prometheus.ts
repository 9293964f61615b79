/**
 * @module `@autotls/core/prometheus`: the manager's certificates and its CA traffic as Prometheus metrics,
 * in cert-manager's vocabulary. Certificate figures are read from the served certificates at each scrape;
 * request, failure and wait figures come from the diagnostics channels (diagnostics.ts) as they happen.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  type AcmeRequestMessage,
  diagnosticsChannels,
  type ObtainFailureMessage,
  type RateLimiterWaitMessage,
} from './diagnostics.js';
import type { CertManager } from './manager.js';

export interface RegisterMetricsOptions {
  /** Where the metrics go (prom-client's `register` if you use the global one). */
  registry: Registry;
  /** Default `autotls_`. */
  prefix?: string;
}

export interface RegisteredMetrics {
  /** Removes the metrics from the registry and stops listening. */
  unregister(): void;
}

/** Requests to a CA take tens of milliseconds to seconds; a timeout is 30 s or more. */
const REQUEST_DURATION_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** The limiter's window is seconds long; waits beyond a minute mean a burst of hundreds of names. */
const WAIT_BUCKETS_SECONDS = [0, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Registers the autotls metrics for `manager` on `registry`. Request, failure and limiter figures are
 * those of every manager in the process (the CAs and their limiters are shared, as the channels are).
 * @example
 * import { Registry } from 'prom-client';
 * import { registerMetrics } from '@autotls/core/prometheus';
 * const registry = new Registry();
 * registerMetrics(manager, { registry });
 * app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
 */
export function registerMetrics(manager: CertManager, options: RegisterMetricsOptions): RegisteredMetrics {
  const prefix = options.prefix ?? 'autotls_';
  const family: Family = { registers: [options.registry], names: [], prefix };
  certificateGauges(manager, family);
  const subscriptions = trafficMetrics(family);
  for (const [channel, listener] of subscriptions) diagnosticsChannel.subscribe(channel, listener);
  return {
    unregister() {
      for (const [channel, listener] of subscriptions) diagnosticsChannel.unsubscribe(channel, listener);
      for (const name of family.names) options.registry.removeSingleMetric(name);
    },
  };
}

/** Where a metric goes, and the prefixed names registered so far (to unregister them). */
interface Family {
  registers: Registry[];
  names: string[];
  prefix: string;
}

function named<T extends { name: string }>(family: Family, config: T): T & { registers: Registry[] } {
  const name = `${family.prefix}${config.name}`;
  family.names.push(name);
  return { ...config, name, registers: family.registers };
}

/** The figures read from the served certificates at each scrape: nothing to drift. */
function certificateGauges(manager: CertManager, family: Family): void {
  const windowRatio = manager.config.renewal.windowRatio;
  const served = () =>
    manager.managedNames().map((name) => ({ name, certificate: manager.getCertificate(name) }));
  new Gauge(
    named(family, {
      name: 'certificate_expiration_timestamp_seconds',
      help: 'The date after which the certificate expires (notAfter), in seconds since the epoch.',
      labelNames: ['name', 'issuer'] as const,
      collect() {
        this.reset();
        for (const { name, certificate } of served()) {
          if (certificate) this.set({ name, issuer: certificate.issuerKey }, certificate.notAfter / 1000);
        }
      },
    }),
  );
  new Gauge(
    named(family, {
      name: 'certificate_renewal_timestamp_seconds',
      help: 'When the certificate is due for renewal (the ARI time when earlier), in seconds since the epoch.',
      labelNames: ['name', 'issuer'] as const,
      collect() {
        this.reset();
        for (const { name, certificate } of served()) {
          if (!certificate) continue;
          const lifetimeMs = certificate.notAfter - certificate.notBefore;
          const ratioDueMs = certificate.notAfter - lifetimeMs * windowRatio;
          const dueMs = Math.min(manager.renewalAt(name) ?? ratioDueMs, ratioDueMs);
          this.set({ name, issuer: certificate.issuerKey }, Math.round(dueMs) / 1000);
        }
      },
    }),
  );
  new Gauge(
    named(family, {
      name: 'certificate_ready_status',
      help: 'Whether a valid certificate is served for the name (one-hot over condition True/False).',
      labelNames: ['name', 'condition'] as const,
      collect() {
        this.reset();
        const now = Date.now();
        for (const { name, certificate } of served()) {
          const ready = Boolean(certificate && certificate.notBefore <= now && now < certificate.notAfter);
          this.set({ name, condition: 'True' }, ready ? 1 : 0);
          this.set({ name, condition: 'False' }, ready ? 0 : 1);
        }
      },
    }),
  );
}

/** Requests, failures and limiter waits as they happen, from the diagnostics channels; the subscriptions. */
function trafficMetrics(
  family: Family,
): ReadonlyArray<readonly [string | symbol, (message: unknown) => void]> {
  const requests = new Counter(
    named(family, {
      name: 'acme_requests_total',
      help: 'Requests sent to ACME CAs, by CA, endpoint and HTTP status (0: no answer).',
      labelNames: ['ca', 'endpoint', 'status'] as const,
    }),
  );
  const requestDuration = new Histogram(
    named(family, {
      name: 'acme_request_duration_seconds',
      help: 'How long requests to ACME CAs took, answered or not.',
      labelNames: ['ca', 'endpoint'] as const,
      buckets: REQUEST_DURATION_BUCKETS_SECONDS,
    }),
  );
  const failures = new Counter(
    named(family, {
      name: 'obtain_failures_total',
      help: 'Failed attempts to get a certificate from an issuer.',
      labelNames: ['issuer'] as const,
    }),
  );
  const waits = new Histogram(
    named(family, {
      name: 'rate_limiter_wait_seconds',
      help: "How long new orders waited for the internal rate limiter's slot.",
      buckets: WAIT_BUCKETS_SECONDS,
    }),
  );
  const onRequest = (message: unknown) => {
    const { ca, endpoint, status, durationMs } = message as AcmeRequestMessage;
    requests.inc({ ca, endpoint, status: String(status) });
    requestDuration.observe({ ca, endpoint }, durationMs / 1000);
  };
  const onFailure = (message: unknown) => failures.inc({ issuer: (message as ObtainFailureMessage).issuer });
  const onWait = (message: unknown) => waits.observe((message as RateLimiterWaitMessage).waitMs / 1000);
  return [
    [diagnosticsChannels.acmeRequest.name, onRequest],
    [diagnosticsChannels.obtainFailure.name, onFailure],
    [diagnosticsChannels.rateLimiterWait.name, onWait],
  ];
}
