#!/usr/bin/env node
// Builds the native addon with cmake-js (Release). Run by `npm install` /
// `npm ci` in this folder, and by `npm run build:addon`.
//
//   FOCUSLLM_CUDA=on|off|auto   CUDA backend (auto: when nvcc is found)
//   FOCUSLLM_CUDA_ARCHS="80;90a" CUDA architectures (default 80;86;89;90a)
//   FOCUSLLM_NATIVE=1           optimise the CPU code for this machine only
//   FOCUSLLM_JOBS=N             parallel compile jobs (default: cores)
'use strict';
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  console.error('focusllm: cmake-js is not installed; run `npm install` in the focusllm folder first.');
  process.exit(1);
}

const cuda = (process.env.FOCUSLLM_CUDA || 'auto').toLowerCase();
if (!['on', 'off', 'auto'].includes(cuda)) {
  console.error(`focusllm: FOCUSLLM_CUDA must be on, off or auto, got "${process.env.FOCUSLLM_CUDA}"`);
  process.exit(1);
}
const jobs = String(process.env.FOCUSLLM_JOBS || os.availableParallelism?.() || os.cpus().length);
const args = [cmakeJs, 'compile', '--directory', root, '--config', 'Release', '--parallel', jobs,
  `--CDFOCUSLLM_CUDA=${cuda}`];
if (process.env.FOCUSLLM_CUDA_ARCHS) args.push(`--CDFOCUSLLM_CUDA_ARCHS=${process.env.FOCUSLLM_CUDA_ARCHS}`);
if (/^(1|on|true|yes)$/i.test(process.env.FOCUSLLM_NATIVE || '')) args.push('--CDFOCUSLLM_NATIVE=ON');

const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (r.status !== 0) {
  console.error('focusllm: building the native addon failed (see the log above). It needs CMake >= 3.18 and a C++17 compiler;');
  console.error('          set FOCUSLLM_CUDA=off to skip the CUDA backend.');
  process.exit(r.status || 1);
}
