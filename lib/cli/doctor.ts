// focusllm doctor: which backends this build has and whether they work here.
import os from 'node:os';

import { parseFlags, usage, type FlagSpec } from './args';
import type { Command } from './command';
import { buildInfo, native, packageRoot } from '../native';

const SPEC: Record<string, FlagSpec> = { json: { type: 'bool', help: 'print one JSON object' } };

export const command: Command = {
  usage: () => usage('doctor', 'Report the native build: backends compiled in, usable devices, CPU features.', SPEC),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    const build = buildInfo();
    const report: Record<string, unknown> = {
      package: packageRoot(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cores: os.availableParallelism?.() ?? os.cpus().length,
      build,
    };
    let ok = true;
    try {
      const addon = native();
      const b = addon.backends();
      report.addon = { version: addon.version, cpu: addon.cpuDescription(), cuda: b.cuda };
    } catch (e) {
      ok = false;
      report.addon = { error: (e as Error).message };
    }
    if (f.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return ok ? 0 : 1;
    }
    const a = report.addon as { version?: string; cpu?: string; cuda?: { compiled: boolean; available: boolean; reason: string }; error?: string };
    const lines = [`focusllm ${a.version ?? '(addon not loaded)'} on node ${process.version}, ${report.platform}, ${report.cores} cores`];
    if (a.error) {
      lines.push(`addon: NOT LOADED - ${a.error}`);
    } else {
      lines.push(`backends compiled in: cpu${a.cuda!.compiled ? ', cuda' : ''}${build?.cudaArchitectures && a.cuda!.compiled ? ` (sm ${build.cudaArchitectures})` : ''}`);
      lines.push(`cpu: ${a.cpu}`);
      lines.push(`cuda: ${a.cuda!.available ? 'usable' : `not usable - ${a.cuda!.reason}`}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return ok ? 0 : 1;
  },
};
