// Loads the native addon, or explains how to build it.
import fs from 'node:fs';
import path from 'node:path';

import type { NativeAddon } from '../typings/native';

/** The package root: the folder above lib/ (sources) or dist/lib/ (compiled). */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'focusllm') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..');
}

export const BUILD_HELP =
  'Build it with `npm run build:addon` in the focusllm package folder (needs CMake >= 3.18 and a C++17 compiler; ' +
  'the CUDA toolkit adds the GPU backend). When focusllm is a dependency, npm may have skipped its install script: ' +
  'run `npm rebuild focusllm`, or allow its script (`npm install-scripts approve focusllm`) and reinstall.';

let cached: NativeAddon | undefined;

/** The addon; throws an Error that says which command builds it when it is missing. */
export function native(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  // FOCUSLLM_ADDON: an explicit .node file (used as is, even when missing).
  const candidates = process.env.FOCUSLLM_ADDON
    ? [path.resolve(process.env.FOCUSLLM_ADDON)]
    : [path.join(root, 'build', 'Release', 'focusllm.node'), path.join(root, 'build', 'Debug', 'focusllm.node')];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(`focusllm: the native addon is not built (looked for ${candidates.join(', ')}). ${BUILD_HELP}`);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached = require(found) as NativeAddon;
  } catch (e) {
    throw new Error(`focusllm: the native addon at ${found} failed to load: ${(e as Error).message}. ${BUILD_HELP}`);
  }
  return cached;
}

/** What the build put in (from build/focusllm-build.json), without loading the addon. */
export function buildInfo(): { cuda: boolean; cudaArchitectures: string; native: boolean } | null {
  const f = path.join(packageRoot(), 'build', 'focusllm-build.json');
  try {
    const j = JSON.parse(fs.readFileSync(f, 'utf8'));
    return { cuda: !!j.cuda, cudaArchitectures: String(j.cudaArchitectures ?? ''), native: !!j.native };
  } catch {
    return null;
  }
}
