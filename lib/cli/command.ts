// What every CLI command module exports.

export interface Command {
  /** usage text for --help and usage errors */
  usage(): string;
  /** runs with argv after the command name; resolves with the exit code */
  run(argv: string[]): Promise<number>;
}
