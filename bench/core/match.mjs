// Subject matching against 10,000 patterns `tenant.<i>.orders.*` plus one
// `tenant.*.audit.>`: a JS loop over compiled RegExps (the anchor) against myelin's
// native trie with its warm per-subject cache, called from JS.
import { native } from '../../dist/esm/internal/native.js';
import { consume, done, measure, scaled } from '../lib.mjs';

const patterns = [];
for (let i = 0; i < 10_000; i++) patterns.push(`tenant.${i}.orders.*`);
patterns.push('tenant.*.audit.>');
const subjects = [];
for (let i = 0; i < 1000; i++) subjects.push(i % 2 ? `tenant.${(i * 37) % 10_000}.orders.created` : `tenant.${i}.audit.login.ok`);

const toRegExp = (p) =>
  new RegExp(
    '^' +
      p
        .split('.')
        .map((t) => (t === '*' ? '[^.]+' : t === '>' ? '.+' : t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('\\.') +
      '$',
  );
const regexps = patterns.map(toRegExp);
measure('match.regexp.loop', 'matches/s', scaled(2_000), (n) => {
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const s = subjects[i % 1000];
    for (let j = 0; j < regexps.length; j++) if (regexps[j].test(s)) hits++;
  }
  consume(hits);
});

const m = new (native().SubjectMatcher)();
patterns.forEach((p, i) => m.subscribe(p, i));
m.bindOutput(new Uint32Array(16));
measure('match.native.js.warm', 'matches/s', scaled(2_000_000), (n) => {
  let hits = 0;
  for (let i = 0; i < n; i++) hits += m.matchBound(subjects[i % 1000]);
  consume(hits);
});
done();
