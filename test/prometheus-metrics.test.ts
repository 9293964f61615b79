import diagnosticsChannel from 'node:diagnostics_channel';
import { acme, CertManager, silentLogger } from '@autotls/core';
import { registerMetrics } from '@autotls/core/prometheus';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { freePort } from './support/ports.js';
import { serve, tempDir } from './support/servers.js';
import { usePebble } from './support/use-pebble.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/g;

/**
 * A strict reader of the Prometheus text format (0.0.4): each family's HELP then TYPE, once, before its
 * samples; a family's samples together; histogram series complete (`le` rising to +Inf, `_sum`, `_count`).
 */
function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: string | undefined;
  const done = new Set<string>();
  const familyOf = (sample: string) =>
    [...families.keys()].find(
      (name) =>
        sample === name ||
        (families.get(name)?.type === 'histogram' &&
          ['_bucket', '_sum', '_count'].some((s) => sample === name + s)),
    );
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (help) {
      const [, name = ''] = help;
      if (families.has(name)) throw new Error(`second HELP for ${name}`);
      if (current) done.add(current);
      families.set(name, { help: help[2] ?? '', type: 'untyped', samples: [] });
      current = name;
      continue;
    }
    if (type) {
      const [, name = '', kind] = type;
      const family = families.get(name);
      if (name !== current || !family || family.samples.length > 0)
        throw new Error(`misplaced TYPE for ${name}`);
      family.type = kind as Family['type'];
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment: ${line}`);
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const [, sampleName = '', labelText = '', valueText = ''] = match;
    const family = familyOf(sampleName);
    if (!family || family !== current || done.has(family))
      throw new Error(`sample outside its family: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key = '', value = ''] of labelText.matchAll(LABEL)) labels[key] = value;
    const value = valueText === '+Inf' ? Number.POSITIVE_INFINITY : Number(valueText);
    if (Number.isNaN(value)) throw new Error(`not a number: ${line}`);
    families.get(family)?.samples.push({ name: sampleName, labels, value });
  }
  for (const [name, family] of families) {
    if (family.type === 'histogram') checkHistogram(name, family);
    if (family.type === 'counter' && !name.endsWith('_total'))
      throw new Error(`counter ${name} lacks _total`);
  }
  return families;
}

function checkHistogram(name: string, family: Family): void {
  const series = new Map<string, Sample[]>();
  for (const sample of family.samples) {
    const { le: _le, ...rest } = sample.labels;
    const key = JSON.stringify(rest);
    series.set(key, [...(series.get(key) ?? []), sample]);
  }
  for (const samples of series.values()) {
    const buckets = samples.filter((sample) => sample.name === `${name}_bucket`);
    const bounds = buckets.map((bucket) => Number(bucket.labels.le === '+Inf' ? Infinity : bucket.labels.le));
    if (bounds.at(-1) !== Number.POSITIVE_INFINITY) throw new Error(`${name}: no +Inf bucket`);
    if (bounds.some((bound, i) => i > 0 && bound <= (bounds[i - 1] ?? 0)))
      throw new Error(`${name}: le not rising`);
    const counts = buckets.map((bucket) => bucket.value);
    if (counts.some((count, i) => i > 0 && count < (counts[i - 1] ?? 0)))
      throw new Error(`${name}: not cumulative`);
    const count = samples.find((sample) => sample.name === `${name}_count`)?.value;
    if (count !== counts.at(-1) || !samples.some((sample) => sample.name === `${name}_sum`)) {
      throw new Error(`${name}: _count/_sum missing or not the +Inf bucket`);
    }
  }
}

const sampleValue = (families: Map<string, Family>, family: string, labels: Record<string, string>) =>
  families
    .get(family)
    ?.samples.filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);

const pebble = usePebble();

describe('registerMetrics(manager, { registry })', () => {
  it('exposes strict Prometheus text with the certificate, request and failure figures', async () => {
    const { ca } = pebble.cas.pebbles;
    // Nobody listens there: every attempt at this issuer fails before the working one is asked.
    const downUrl = `https://127.0.0.1:${await freePort()}/dir`;
    const downIssuer = acme({ directoryUrl: downUrl, ca: ca.caPem });
    const upIssuer = acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, challenges: ['http-01'] });
    const manager = new CertManager({
      issuers: [downIssuer, upIssuer],
      storage: await tempDir(),
      logger: silentLogger,
    });
    const registry = new Registry();
    const metrics = registerMetrics(manager, { registry });
    const servers = await serve(manager, pebble.httpPort);
    const name = 'metrics.example.test';
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const certificate = manager.getCertificate(name);
      const families = parsePrometheusText(await registry.metrics());

      expect(families.get('autotls_certificate_expiration_timestamp_seconds')?.type).toBe('gauge');
      expect(families.get('autotls_certificate_renewal_timestamp_seconds')?.type).toBe('gauge');
      expect(families.get('autotls_certificate_ready_status')?.type).toBe('gauge');
      expect(families.get('autotls_acme_requests_total')?.type).toBe('counter');
      expect(families.get('autotls_obtain_failures_total')?.type).toBe('counter');
      expect(families.get('autotls_acme_request_duration_seconds')?.type).toBe('histogram');
      expect(families.get('autotls_rate_limiter_wait_seconds')?.type).toBe('histogram');

      const labels = { name, issuer: upIssuer.key };
      const expiration = sampleValue(families, 'autotls_certificate_expiration_timestamp_seconds', labels);
      expect(Math.abs((expiration ?? 0) - (certificate?.notAfter ?? 0) / 1000)).toBeLessThanOrEqual(1);
      const renewal = sampleValue(families, 'autotls_certificate_renewal_timestamp_seconds', labels) ?? 0;
      expect(renewal * 1000).toBeGreaterThan(certificate?.notBefore ?? 0);
      expect(renewal * 1000).toBeLessThan(certificate?.notAfter ?? 0);
      expect(sampleValue(families, 'autotls_certificate_ready_status', { name, condition: 'True' })).toBe(1);
      expect(sampleValue(families, 'autotls_certificate_ready_status', { name, condition: 'False' })).toBe(0);
      const newOrders = { ca: ca.directoryUrl, endpoint: 'newOrder', status: '201' };
      expect(sampleValue(families, 'autotls_acme_requests_total', newOrders)).toBeGreaterThan(0);
      expect(
        sampleValue(families, 'autotls_acme_requests_total', { ca: downUrl, status: '0' }),
      ).toBeGreaterThan(0);
      expect(
        sampleValue(families, 'autotls_obtain_failures_total', { issuer: downIssuer.key }),
      ).toBeGreaterThanOrEqual(1);
      expect(sampleValue(families, 'autotls_obtain_failures_total', { issuer: upIssuer.key }) ?? 0).toBe(0);
      const waits = families
        .get('autotls_rate_limiter_wait_seconds')
        ?.samples.find((s) => s.name.endsWith('_count'));
      expect(waits?.value).toBeGreaterThanOrEqual(1);
    } finally {
      metrics.unregister();
      await servers.close();
      await manager.close();
    }
    expect((await registry.metrics()).trim()).toBe('');
  });

  it('publishes the same request figures on node:diagnostics_channel', async () => {
    const messages: Array<{ ca: string; endpoint: string; status: number; durationMs: number }> = [];
    const listener = (message: unknown) => messages.push(message as (typeof messages)[number]);
    diagnosticsChannel.subscribe('autotls:acme:request', listener);
    const served: Array<{ identifier: string; serial: string; notAfter: number }> = [];
    const onServed = (message: unknown) => served.push(message as (typeof served)[number]);
    diagnosticsChannel.subscribe('autotls:certificate:served', onServed);
    const { ca } = pebble.cas.pebbles;
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, challenges: ['http-01'] })],
      storage: await tempDir(),
      logger: silentLogger,
    });
    const servers = await serve(manager, pebble.httpPort);
    let certificate: ReturnType<typeof manager.getCertificate>;
    try {
      await manager.manage(['channel.example.test']);
      await manager.ready(['channel.example.test']);
      certificate = manager.getCertificate('channel.example.test');
    } finally {
      diagnosticsChannel.unsubscribe('autotls:acme:request', listener);
      diagnosticsChannel.unsubscribe('autotls:certificate:served', onServed);
      await servers.close();
      await manager.close();
    }
    expect(messages).toContainEqual(
      expect.objectContaining({ ca: ca.directoryUrl, endpoint: 'newOrder', status: 201 }),
    );
    expect(served).toEqual([
      expect.objectContaining({
        identifier: 'channel.example.test',
        serial: certificate?.serialNumber,
        notAfter: certificate?.notAfter,
      }),
    ]);
    // Order, authorization and certificate URLs carry ids; the endpoint label never does.
    expect(messages.every((message) => !/[0-9]/.test(message.endpoint.replace(/^\/$/, '')))).toBe(true);
  });
});
