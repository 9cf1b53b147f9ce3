// The directory of the compiled module. This is the ESM form; scripts/build-ts.mjs
// writes the CommonJS form (`__dirname`) into dist/cjs, the one place the two builds
// differ.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// @ts-ignore import.meta is an error under --module commonjs; that build replaces this file.
export const moduleDir: string = dirname(fileURLToPath(import.meta.url));
