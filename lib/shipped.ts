// The model shipped inside the package (models/focus-tiny): a tiny LLaMA
// trained here from scratch, with FocusLLM candidate projections trained by
// focusllm itself (scripts/demo/train-demo.sh reproduces it). loadModel()
// without a folder, or with its name, loads it; the CLI commands that read a
// model default to it.
import fs from 'node:fs';
import path from 'node:path';

export const SHIPPED_MODEL = 'focus-tiny';

/** The package root: the nearest folder above this file with focusllm's package.json. */
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    try {
      if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'focusllm') return dir;
    } catch {
      // not here: look further up
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find focusllm's package.json above ${__dirname}`);
    dir = up;
  }
}

/** The folder of the shipped model (it exists in a complete install). */
export function shippedModelDir(): string {
  return path.join(packageRoot(), 'models', SHIPPED_MODEL);
}

/**
 * A model argument to a folder: undefined, "" or the shipped model's name give
 * the shipped model (an Error says so when the install lacks it); anything
 * else is a folder path, returned as given.
 */
export function resolveModelDir(dir: string | undefined): { dir: string; shipped: boolean } {
  if (dir !== undefined && dir !== SHIPPED_MODEL) return { dir, shipped: false };
  const d = shippedModelDir();
  if (!fs.existsSync(path.join(d, 'config.json')))
    throw new Error(`the shipped model ${SHIPPED_MODEL} is not in this install (${d} has no config.json): give a checkpoint folder`);
  return { dir: d, shipped: true };
}
