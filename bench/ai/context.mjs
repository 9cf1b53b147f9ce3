// Context processing: an 8,000-token conversation trimmed to a 4,000-token budget and
// counted with the real tokenizer (gpt-4o's o200k encoding). Three cases: the first
// trim in a process (tokenizer tables loading), a history seen for the first time
// (every message tokenized), and a session's next turn (earlier messages' counts reused).
import { countMessages, trimToBudget } from '../../dist/esm/ai/session/index.js';
import { consume, done, emit, measure, scaled } from '../lib.mjs';

const words = 'the quick brown fox jumps over a lazy dog while naïve agents plan 日本 trips and 🚀 launches'.split(' ');
function history(seed) {
  const msgs = [{ role: 'system', content: 'You are a careful assistant. Answer briefly.' }];
  let x = seed;
  let tokens = 0;
  for (let turn = 0; tokens < 8000; turn++) {
    const len = 40 + (turn % 7) * 20;
    const text = [];
    for (let i = 0; i < len; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      text.push(words[x % words.length]);
    }
    msgs.push({ role: turn % 2 ? 'assistant' : 'user', content: `${text.join(' ')} (${turn})` });
    tokens = countMessages(msgs, 'gpt-4o');
  }
  return msgs;
}

const opts = { maxContextTokens: 4000, model: 'gpt-4o' };
let t0 = performance.now();
const first = history(1);
const firstCount = countMessages(first, 'gpt-4o');
emit('ai.context.first_load', 'ms', [performance.now() - t0], { tokens: firstCount });

let seed = 100;
const fresh = Array.from({ length: 20 }, () => history(seed++).map((m) => ({ ...m, content: `${m.content} #${seed}` })));
let k = 0;
measure('ai.context.trim.fresh', 'ns/op', 20, (n) => {
  for (let i = 0; i < n; i++) {
    const h = fresh[k++ % fresh.length].map((m) => ({ ...m, content: `${m.content}.${k}` })); // never seen before
    const r = trimToBudget(h, opts);
    consume(r.tokens + countMessages(r.messages, 'gpt-4o'));
  }
});

const session = history(7);
measure('ai.context.trim.next_turn', 'ns/op', scaled(2000), (n) => {
  for (let i = 0; i < n; i++) {
    session.push({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i} ${words[i % words.length]}` });
    const r = trimToBudget(session, opts);
    consume(r.tokens + countMessages(r.messages, 'gpt-4o'));
  }
});
done();
