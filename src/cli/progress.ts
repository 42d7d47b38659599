/**
 * Terminal helpers for the srflow commands: a progress bar on stderr (cli-progress) shown only
 * when stderr is a TTY and the command is not quiet, and one-line `srflow: …` argument errors.
 */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';

export interface ProgressUpdate {
  done: number;
  total: number;
  stage: string;
}

export interface ProgressBar {
  /** Begin a new task (e.g. one input image) with a label. */
  start(label: string, total: number): void;
  update(p: ProgressUpdate): void;
  /** Remove the bar (before printing anything else, and on errors). */
  stop(): void;
}

const noop: ProgressBar = { start() {}, update() {}, stop() {} };

/** Whether a progress bar should be drawn: stderr is a terminal and the command is not quiet. */
export function progressWanted(quiet: boolean | undefined, stream: NodeJS.WriteStream = process.stderr): boolean {
  return !quiet && stream.isTTY === true;
}

export function createProgressBar(enabled: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!enabled) return noop;
  let bar: cliProgress.SingleBar | null = null;
  const stop = () => {
    if (bar) bar.stop();
    bar = null;
  };
  return {
    start(label, total) {
      stop();
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: '{label} [{bar}] {percentage}% | {stage} | {value}/{total} | ETA {eta_formatted}',
          clearOnComplete: true,
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(1, total), 0, { label, stage: 'start' });
    },
    update(p) {
      if (!bar) return;
      bar.setTotal(Math.max(1, p.total));
      bar.update(p.done, { stage: p.stage });
    },
    stop,
  };
}

/**
 * Make commander's own errors (unknown option, missing argument, …) one line on stderr,
 * `srflow: <message>`, with no help hint after it; main() maps them to exit code 2.
 */
export function oneLineErrors(cmd: Command): Command {
  return cmd.showHelpAfterError(false).configureOutput({
    outputError: (str, write) => {
      const msg = str
        .replace(/^error:\s*/i, '')
        .replace(/\s*\n\s*/g, ' ')
        .trim();
      write(`srflow: ${msg}\n`);
    },
  });
}

/** JSON.stringify with non-finite numbers (PSNR of identical images) as null. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), indent);
}
