// Alertmanager-compatible webhooks: the payload a Prometheus Alertmanager sends to a
// webhook receiver (version "4"), so receivers written for it (chat bridges, PagerDuty
// adapters, alertmanager-webhook-logger) take myelin's alerts unchanged.
//
// Delivery: POST with undici; a 5xx answer or a network error is retried with
// exponential backoff up to `attempts` tries in all; a 4xx answer is final (the receiver
// refused this payload and will refuse it again). Never throws: the outcome is returned,
// and the alert manager counts failures.
import { request } from 'undici';
import type { Alert } from './types.js';

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: WebhookAlert[];
}

export interface WebhookDeliveryOptions {
  /** Tries in all, first included (1..10). Default 4. */
  attempts?: number;
  /** The wait before the first retry; doubled each time. Default 200 ms. */
  backoffMs?: number;
  /** Per try, headers and body. Default 5,000 ms. */
  timeoutMs?: number;
  /** Aborts the retries (the alert manager's close()). */
  signal?: AbortSignal;
}

export interface WebhookOutcome {
  ok: boolean;
  attempts: number;
  /** The last HTTP status, when an answer came. */
  status?: number;
  /** The last network error's message, when none came. */
  error?: string;
}

/** Alertmanager's "zero time": what a firing alert's endsAt reads. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** 64-bit FNV-1a of the sorted label pairs, in hex: stable per alert identity, as Alertmanager's fingerprint is. */
export function fingerprint(labels: Readonly<Record<string, string>>): string {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (const k of Object.keys(labels).sort()) {
    for (const ch of Buffer.from(`${k}\u00ff${labels[k]}\u00ff`, 'utf8')) {
      h ^= BigInt(ch);
      h = (h * prime) & mask;
    }
  }
  return h.toString(16).padStart(16, '0');
}

/** The alert's Alertmanager labels: alertname and severity first, then the series' own. */
export function alertLabels(alert: Alert): Record<string, string> {
  return { ...alert.labels, alertname: alert.name, severity: alert.severity };
}

function common(maps: Array<Record<string, string>>): Record<string, string> {
  if (maps.length === 0) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(maps[0])) if (maps.every((m) => m[k] === v)) out[k] = v;
  return out;
}

export interface PayloadOptions {
  receiver?: string;
  externalURL?: string;
}

/** Builds the version 4 payload for alerts of one rule (one group: alertname). */
export function webhookPayload(alerts: readonly Alert[], o: PayloadOptions = {}): WebhookPayload {
  const items: WebhookAlert[] = alerts.map((a) => {
    const labels = alertLabels(a);
    return {
      status: a.status,
      labels,
      annotations: { summary: `${a.metric} is ${a.value}`, metric: a.metric, value: String(a.value) },
      startsAt: new Date(a.startsAt).toISOString(),
      endsAt: a.status === 'resolved' && a.endsAt !== undefined ? new Date(a.endsAt).toISOString() : ZERO_TIME,
      generatorURL: o.externalURL ? `${o.externalURL.replace(/\/$/, '')}/dashboard` : '',
      fingerprint: fingerprint(labels),
    };
  });
  const groupLabels: Record<string, string> = alerts.length > 0 ? { alertname: alerts[0].name } : {};
  return {
    version: '4',
    groupKey: `{}:{alertname=${JSON.stringify(groupLabels.alertname ?? '')}}`,
    truncatedAlerts: 0,
    status: items.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: o.receiver ?? 'myelin',
    groupLabels,
    commonLabels: common(items.map((a) => a.labels)),
    commonAnnotations: common(items.map((a) => a.annotations)),
    externalURL: o.externalURL ?? '',
    alerts: items,
  };
}

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** POSTs the payload as JSON, retrying 5xx and network errors with backoff; never throws. */
export async function deliverWebhook(url: string, payload: WebhookPayload, o: WebhookDeliveryOptions = {}): Promise<WebhookOutcome> {
  const attempts = o.attempts ?? 4;
  const backoff = o.backoffMs ?? 200;
  const timeout = o.timeoutMs ?? 5000;
  const body = JSON.stringify(payload);
  let out: WebhookOutcome = { ok: false, attempts: 0 };
  for (let i = 0; i < attempts; i++) {
    if (o.signal?.aborted) break;
    if (i > 0) await sleep(backoff * 2 ** (i - 1), o.signal);
    if (o.signal?.aborted) break;
    try {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'myelin-alerts' },
        body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: o.signal,
      });
      await res.body.dump();
      out = { ok: res.statusCode < 300, attempts: i + 1, status: res.statusCode };
      if (res.statusCode < 500) return out;
    } catch (err) {
      out = { ok: false, attempts: i + 1, error: (err as Error)?.message ?? String(err) };
    }
  }
  return out;
}
