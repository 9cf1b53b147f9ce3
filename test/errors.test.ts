// MyelinError's code is trustworthy, and the code tables agree in both directions:
//   native -> TS    every code the native status table (status.h, through the addon's
//                   statusTable()) or any native source can produce is in codes.ts
//   TS -> native    every native code in codes.ts is produced by some native status
//   TS -> docs      every public code is in README.md's Errors table, and that table
//                   names only public codes (shared/API.md is outside the repository)
//   lib -> TS       every 'ERR_...' literal in lib/ is in codes.ts
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, MyelinError, invalidArgument } from '../lib/errors.js';
import { NativeErrorCodes, PublicErrorCodes, isErrorCode } from '../lib/internal/codes.js';
import { native, packageRoot } from '../lib/internal/native.js';

const root = packageRoot();

function filesUnder(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, exts));
    else if (exts.some((x) => p.endsWith(x))) out.push(p);
  }
  return out;
}

/** 'ERR_...' codes quoted in source files, with where they are. */
function quotedCodes(files: string[], quote: RegExp): Map<string, string> {
  const found = new Map<string, string>();
  for (const f of files) for (const m of readFileSync(f, 'utf8').matchAll(quote)) found.set(m[1], f.slice(root.length + 1));
  return found;
}

describe('MyelinError', () => {
  it('keeps a known code and the fields it is given', () => {
    const cause = new Error('under');
    const e = new MyelinError('ERR_AI_UPSTREAM', 'upstream failed', { cause, status: 502, provider: 'openai' });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('MyelinError');
    expect(e.code).toBe('ERR_AI_UPSTREAM');
    expect(e.message).toBe('upstream failed');
    expect(e.cause).toBe(cause);
    expect(e).toMatchObject({ status: 502, provider: 'openai' });
    expect(e.unknownCode).toBeUndefined();
    expect(invalidArgument('x').code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('never lets extra fields replace code, name, message, stack or the prototype', () => {
    const fields = JSON.parse(
      '{"code":"ERR_ABORTED","name":"TypeError","message":"forged","stack":"forged","unknownCode":"X","constructor":1,"__proto__":{"forged":true},"status":429}',
    );
    const e = new MyelinError('ERR_AI_RATE_LIMITED', 'real', fields as never);
    expect(e.code).toBe('ERR_AI_RATE_LIMITED');
    expect(e.name).toBe('MyelinError');
    expect(e.message).toBe('real');
    expect(e.stack).toMatch(/^MyelinError: real/);
    expect(e.unknownCode).toBeUndefined();
    expect(e).toBeInstanceOf(MyelinError);
    expect(Object.getPrototypeOf(e)).toBe(MyelinError.prototype);
    expect(e.constructor).toBe(MyelinError);
    expect((e as unknown as { status: number }).status).toBe(429);
  });

  it('cannot have its code reassigned', () => {
    const e = new MyelinError('ERR_BUS_FULL', 'full');
    expect(() => {
      (e as { code: string }).code = 'ERR_INTERNAL';
    }).toThrow(TypeError);
    expect(e.code).toBe('ERR_BUS_FULL');
  });

  it('turns an unknown code into ERR_INTERNAL but keeps it visible, with one warning per code', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      for (const bad of ['ERR_NOT_A_CODE', 'toString', 'OK', 'ERR_NOT_A_CODE']) {
        const e = new MyelinError(bad as never, 'boom');
        expect(e.code).toBe('ERR_INTERNAL');
        expect(e.unknownCode).toBe(bad);
        expect(e.message).toBe(`boom [unknown MyelinError code ${bad}]`);
      }
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => (w as { code?: string }).code)).toEqual(Array(3).fill('MYELIN_UNKNOWN_ERROR_CODE'));
    expect(warnings.map((w) => w.message).join('\n')).toMatch(/ERR_NOT_A_CODE[\s\S]*toString[\s\S]*OK/);
  });

  it('takes only table codes as own keys, not inherited names', () => {
    expect(isErrorCode('ERR_BUS_FULL')).toBe(true);
    for (const bad of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'OK', '', 42, undefined]) expect(isErrorCode(bad)).toBe(false);
  });

  it('forbids unknown codes, reserved fields and reassigning code at compile time', () => {
    const file = join(root, 'test', 'fixtures', 'error-types.ts');
    const program = ts.createProgram([file], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
    });
    expect(program.getSourceFile(file), 'fixture compiled').toBeDefined();
    const diags = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    // Each @ts-expect-error line failed as it should; none went unused.
    expect(diags).toEqual([]);
  });
});

describe('error code tables', () => {
  const rows = native().statusTable();

  it('public and native codes are disjoint and make up ErrorCodes', () => {
    const pub = Object.keys(PublicErrorCodes);
    const nat = Object.keys(NativeErrorCodes);
    expect(pub.filter((c) => nat.includes(c))).toEqual([]);
    expect(Object.keys(ErrorCodes).sort()).toEqual([...pub, ...nat].sort());
    for (const c of Object.keys(ErrorCodes)) expect(c).toMatch(/^ERR_[A-Z0-9_]+$/);
  });

  it('native -> TS: every native status code is in codes.ts (kOk excepted: it is never thrown)', () => {
    expect(rows.length).toBeGreaterThan(10);
    expect(rows[0]).toEqual({ name: 'kOk', code: 'OK', message: 'ok' });
    for (const row of rows.slice(1)) expect(isErrorCode(row.code), `${row.name} -> ${row.code}`).toBe(true);
    expect(rows.find((r) => r.name === 'kInvalidSubject')?.code).toBe('ERR_INVALID_ARGUMENT');
    expect(rows.find((r) => r.name === 'kResourceExhausted')?.code).toBe('ERR_RESOURCE_EXHAUSTED');
  });

  it('native -> TS: every "ERR_..." literal in native sources is in codes.ts, and only status.h names codes', () => {
    const files = [...filesUnder(join(root, 'native', 'src'), ['.h', '.cc']), ...filesUnder(join(root, 'native', 'binding'), ['.h', '.cc'])];
    const found = quotedCodes(files, /"(ERR_[A-Z0-9_]+)"/g);
    expect(found.size).toBeGreaterThan(10);
    for (const [code, where] of found) {
      expect(isErrorCode(code), `${code} in ${where}`).toBe(true);
      expect(where, `${code}: binding code throws statuses, not code strings`).toBe('native/src/common/status.h');
    }
    // status.h's table is what statusTable() reports.
    expect([...found.keys()].sort()).toEqual([...new Set(rows.slice(1).map((r) => r.code))].sort());
  });

  it('TS -> native: every native code in codes.ts is produced by some native status', () => {
    const produced = new Set(rows.map((r) => r.code));
    for (const code of Object.keys(NativeErrorCodes)) expect(produced.has(code), code).toBe(true);
  });

  it("TS -> docs: README.md's Errors table lists exactly the public codes", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = /\n### Errors\n([\s\S]*?)\n#/.exec(readme)?.[1] ?? '';
    const documented = [...section.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.length).toBeGreaterThan(10);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(PublicErrorCodes).sort());
  });

  it("lib -> TS: every 'ERR_...' literal in lib/ is in codes.ts", () => {
    const found = quotedCodes(filesUnder(join(root, 'lib'), ['.ts']), /['"`](ERR_[A-Z0-9_]+)['"`]/g);
    expect(found.size).toBeGreaterThan(10);
    // Node.js's own error codes that lib/ recognises on errors Node throws (never thrown by myelin).
    const nodeCodes = new Map([['ERR_WORKER_INVALID_EXEC_ARGV', 'lib/bus/worker-pool.ts']]);
    for (const [code, where] of found) {
      if (nodeCodes.get(code) === where) expect(isErrorCode(code), `${code} is Node's, not myelin's`).toBe(false);
      else expect(isErrorCode(code), `${code} in ${where}`).toBe(true);
    }
  });
});
