#!/usr/bin/env node
import { run } from '../dist/esm/cli/main.js';

run(process.argv.slice(2));
