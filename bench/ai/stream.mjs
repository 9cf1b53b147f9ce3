// Streaming throughput: text tokens per second through ai.stream against reading the
// simulator's SSE stream directly (undici + the same SSE parser), unpaced upstream.
import { Pool } from 'undici';
import { AIClient } from '../../dist/esm/index.js';
import { SseParser } from '../../dist/esm/ai/stream/sse-parser.js';
import { consume, done, measureAsync, scaled } from '../lib.mjs';
import { startSimulator } from './sim.mjs';

const TOKENS = 2000;
const sim = await startSimulator(['--latency-ms', '0', '--tokens-per-s', '0', '--tokens', String(TOKENS)]);
const messages = [{ role: 'user', content: 'tell me a long story' }];
const body = JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true, max_tokens: TOKENS });
const pool = new Pool(sim.url, { connections: 8 });
const STREAMS = scaled(100);

await measureAsync('ai.stream.direct', 'tokens/s', STREAMS * TOKENS, async (n) => {
  let tokens = 0;
  for (let s = 0; s < n / TOKENS; s++) {
    const r = await pool.request({ path: '/v1/chat/completions', method: 'POST', body, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' } });
    const parser = new SseParser();
    for await (const chunk of r.body) {
      for (const ev of parser.feed(chunk)) {
        if (ev.data === '[DONE]') continue;
        const d = JSON.parse(ev.data);
        if (d.choices?.[0]?.delta?.content) tokens++;
      }
    }
  }
  consume(tokens);
});

const ai = new AIClient({ providers: [{ name: 'sim', kind: 'openai', baseURL: `${sim.url}/v1`, apiKey: 'sk-bench' }] });
await measureAsync('ai.stream.myelin', 'tokens/s', STREAMS * TOKENS, async (n) => {
  let tokens = 0;
  for (let s = 0; s < n / TOKENS; s++) {
    for await (const part of ai.stream({ model: 'sim/gpt-4o-mini', messages, maxTokens: TOKENS })) if (part.type === 'text') tokens++;
  }
  consume(tokens);
});
await ai.close?.();
await pool.close();
await sim.close();
done();
