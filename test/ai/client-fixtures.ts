// Shared setup for the AIClient tests: a simulator, clients pointed at it, a scripted
// raw HTTP upstream for wire shapes the simulator does not produce, and error collection.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { AIClient, type AIClientOptions, type ChatRequest, type StreamPart } from '../../lib/ai/client/index.js';
import { MyelinError } from '../../lib/errors.js';

export const KEY = 'sk-test-SECRET123';

/** Providers for all three kinds against one simulator URL; extra headers per provider name. */
export function providers(url: string, headers: Record<string, Record<string, string>> = {}): AIClientOptions['providers'] {
  return [
    { name: 'openai', kind: 'openai', baseURL: `${url}/v1`, apiKey: KEY, headers: headers.openai },
    { name: 'claude', kind: 'anthropic', baseURL: url, apiKey: KEY, headers: headers.claude },
    { name: 'ollama', kind: 'ollama', baseURL: url, headers: headers.ollama },
  ];
}

export const TARGETS = { openai: 'openai/gpt-4o-mini', claude: 'claude/claude-sonnet-4', ollama: 'ollama/llama3.2' } as const;
export type ProviderName = keyof typeof TARGETS;
export const PROVIDERS = Object.keys(TARGETS) as ProviderName[];

export function client(url: string, extra: Partial<AIClientOptions> = {}): AIClient {
  return new AIClient({ providers: providers(url), retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 }, ...extra });
}

export const hello = (model: string, more: Partial<ChatRequest> = {}): ChatRequest => ({
  model,
  messages: [{ role: 'user', content: 'hello there' }],
  ...more,
});

export const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
};

/** Consumes a stream; returns the parts and the error it ended with, if any. */
export async function drain(it: AsyncIterable<StreamPart>): Promise<{ parts: StreamPart[]; error?: MyelinError & Record<string, any> }> {
  const parts: StreamPart[] = [];
  try {
    for await (const p of it) parts.push(p);
  } catch (err) {
    if (!(err instanceof MyelinError)) throw err;
    return { parts, error: err as MyelinError & Record<string, any> };
  }
  return { parts };
}

export async function rejection(p: Promise<unknown>): Promise<MyelinError & Record<string, any>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof MyelinError) return err as MyelinError & Record<string, any>;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** Everything an error could show a log: message, stack, fields, causes, inspect(). */
export function everything(err: unknown): string {
  const out: string[] = [inspect(err, { depth: 8, showHidden: true })];
  let e: unknown = err;
  for (let i = 0; e && i < 8; i++) {
    const o = e as Record<string, unknown>;
    out.push(String(o.message), String(o.stack));
    try {
      out.push(JSON.stringify(o, Object.getOwnPropertyNames(o)));
    } catch {
      // cycles: inspect above covers them
    }
    e = o.cause;
  }
  return out.join('\n');
}

export type Script = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => unknown;

/** A raw upstream that answers every request with `script`; counts requests and keeps their headers. */
export async function rawServer(script: Script): Promise<{ url: string; requests: Array<{ url: string; headers: http.IncomingHttpHeaders; body: string }>; close: () => Promise<void> }> {
  const requests: Array<{ url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ url: req.url ?? '', headers: req.headers, body });
      void Promise.resolve(script(req, res, body)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Writes each piece as its own chunk, a turn apart, so that the client reads them separately. */
export async function writePieces(res: http.ServerResponse, pieces: Array<string | Buffer>): Promise<void> {
  for (const p of pieces) {
    res.write(p);
    await new Promise((r) => setImmediate(r));
  }
}

export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
