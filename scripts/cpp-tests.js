#!/usr/bin/env node
// Builds and runs the standalone C++ tests (ctest): the op tests, the fixture
// parity test and, in CUDA builds, the CUDA tests (which report themselves
// skipped without a GPU). Reuses the addon's build folder when it exists, so
// the engine library is not compiled twice.
//
//   npm run test:cpp              build + run every test
//   FOCUSLLM_CUDA=off npm run test:cpp
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const buildDir = fs.existsSync(path.join(root, 'build', 'CMakeCache.txt'))
  ? path.join(root, 'build')
  : path.join(root, 'build-tests');
const jobs = String(process.env.FOCUSLLM_JOBS || os.availableParallelism?.() || os.cpus().length);

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.error) {
    console.error(`focusllm: cannot run ${cmd}: ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status || 1);
}

const configure = ['-S', root, '-B', buildDir, '-DFOCUSLLM_BUILD_TESTS=ON'];
if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) configure.push('-DCMAKE_BUILD_TYPE=Release');
if (process.env.FOCUSLLM_CUDA) configure.push(`-DFOCUSLLM_CUDA=${process.env.FOCUSLLM_CUDA}`);
if (process.env.FOCUSLLM_CUDA_ARCHS) configure.push(`-DFOCUSLLM_CUDA_ARCHS=${process.env.FOCUSLLM_CUDA_ARCHS}`);
run('cmake', configure);
run('cmake', ['--build', buildDir, '--parallel', jobs]);
run('ctest', ['--test-dir', buildDir, '--output-on-failure', '--timeout', '900']);
